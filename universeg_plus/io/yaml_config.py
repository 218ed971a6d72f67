"""YAML config files: read, override with ``key=value`` strings, expand environment variables, validate.

One loader for every config of the project (training runs, robustness studies, ablations):

    cfg = load_yaml_config(RunConfig, "configs/tiny.yaml", ["train.steps=20"], what="run config")

String values may name environment variables: ``${VAR}`` (an error when ``VAR`` is unset) or
``${VAR:-default}`` (``default`` when ``VAR`` is unset or empty), so that configs carry no
machine-specific paths, e.g. ``root: ${UNIVERSEG_PLUS_TASKS:-../shared/data/tasks}``.
Every error names the key and the file.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["apply_overrides", "expand_env", "load_yaml_config", "read_yaml_mapping", "validate_config"]

M = TypeVar("M", bound=BaseModel)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_yaml_mapping(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """The mapping at the top of a YAML file (``{}`` for an empty file).

    Raises:
        FileNotFoundError: no such file (named with ``what``).
        ValueError: not YAML, or not a mapping at the top.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse {p}: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{p} must hold a mapping of keys to values, got {type(loaded).__name__}")
    return loaded or {}


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict (copied).

    Raises:
        ValueError: malformed override (no ``=``, empty key, or a value in the path where a section
            is needed).
    """
    out = copy.deepcopy(dict(data))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value (e.g. train.steps=100)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ValueError(f"override {item!r} has an empty key part")
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ValueError(f"override {item!r}: {p!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = _parse_value(raw)
    return out


def _expand_text(text: str, key: str, source: str, environ: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is None:
            raise ValueError(
                f"{key} in {source} names the environment variable {name}, which is not set; set it or "
                f"write ${{{name}:-default}}"
            )
        return value

    return _VAR.sub(sub, text)


def expand_env(
    data: Any, source: str = "config", environ: Mapping[str, str] | None = None, _key: str = ""
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value of nested dicts/lists (copied).

    ``${VAR:-default}`` gives ``default`` when ``VAR`` is unset or empty; ``${VAR}`` gives ``VAR``'s
    value (possibly empty). Keys are left as they are.

    Args:
        data: Parsed YAML (dicts, lists, scalars).
        source: The file (or other origin), for messages.
        environ: Variables to use (default ``os.environ``).

    Raises:
        ValueError: ``${VAR}`` without a default and ``VAR`` unset, naming the key, the file and ``VAR``.
    """
    env = os.environ if environ is None else environ
    if isinstance(data, dict):
        return {k: expand_env(v, source, env, f"{_key}.{k}" if _key else str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [expand_env(v, source, env, f"{_key}[{i}]") for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        return _expand_text(data, _key or "(value)", source, env)
    return data


def validate_config(model: type[M], data: Mapping[str, Any], what: str, source: str) -> M:
    """``model.model_validate(data)``, with every problem listed by its dotted key.

    Raises:
        ValueError: ``"invalid <what> (<source>):"`` then one line per problem.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"invalid {what} ({source}):"]
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"]) or "(root)"
            lines.append(f"  {loc}: {e['msg']}")
        raise ValueError("\n".join(lines)) from None


def load_yaml_config(
    model: type[M],
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    data: Mapping[str, Any] | None = None,
    what: str = "config",
) -> M:
    """Read a YAML file (or take ``data``), apply ``key=value`` overrides, expand environment
    variables and validate into ``model``.

    Args:
        model: The pydantic model of the whole file.
        path: The YAML file; ``None`` uses ``data`` (or the model's defaults).
        overrides: ``section.key=value`` strings (as ``--set`` on the command line), applied before
            the expansion, so they may use ``${VAR}`` too.
        data: The mapping to use when ``path`` is ``None``.
        what: What the file is (``"run config"``), for messages.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad YAML, bad overrides, an unset variable, unknown keys or invalid values (each
            listed with its key and the file).
    """
    if path is not None:
        source = str(path)
        raw: dict[str, Any] = read_yaml_mapping(path, what)
    else:
        source = "dict" if data is not None else "defaults"
        raw = dict(data or {})
    raw = expand_env(apply_overrides(raw, list(overrides)), source)
    return validate_config(model, raw, what, source)
