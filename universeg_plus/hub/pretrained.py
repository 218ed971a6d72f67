"""Resolving pretrained weights: the table's shipped copy, hub repo or release URL, verified, strictly loaded.

Nothing here imports the network class: builders take it as ``model_cls`` (the mixin passes ``cls``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..config import ForwardMode
from ..registry import PRETRAINED, PretrainedEntry, get_config
from .download import HubFile, download_file
from .files import load_state_dict_strict, read_config, read_weights, verify_weights_file
from .folder import CONFIG_NAME, WEIGHTS_NAME, ModelClass, WeightsModel, build_from_files, mark_weights_folder
from .official import fetch_official
from .shipped import WEIGHTS_DIR_ENV, find_shipped_weights, shipped_weights_dirs

__all__ = ["fetch_pretrained", "from_pretrained", "load_pretrained_weights", "resolve_pretrained_files"]

log = logging.getLogger(__name__)


def _shipped(entry: PretrainedEntry) -> tuple[Path, Path, str | None]:
    folder = find_shipped_weights(entry.local_dir, entry.filename) if entry.local_dir else None
    if folder is None:
        searched = ", ".join(str(d) for d in shipped_weights_dirs()) or "none exist"
        raise FileNotFoundError(
            f"shipped weights {entry.local_dir!r} not found in the weights folders ({searched}; "
            f"set {WEIGHTS_DIR_ENV} to add one)"
        )
    return folder / CONFIG_NAME, folder / entry.filename, entry.sha256


def _hub(repo_id: str, filename: str, revision: str, **hub_kwargs) -> tuple[Path, HubFile]:
    weights = download_file(repo_id, filename, revision, **hub_kwargs)
    # Fetch the config at the commit the weights came from, so the pair cannot straddle a push.
    config = download_file(repo_id, CONFIG_NAME, weights.commit or revision, **hub_kwargs)
    return config.path, weights


def resolve_pretrained_files(
    entry: PretrainedEntry,
    *,
    model_cls: ModelClass | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path, str | None]:
    """``(config.json, weights, expected sha256)`` for a table entry, shipped copy first where ``prefer_local``.

    The expected hash is the entry's, else (hub files) the one the hub publishes for the LFS file.
    An entry with a ``url`` (the official release) is fetched once into the user cache and converted
    there (:func:`~universeg_plus.hub.official.fetch_official`), which needs ``model_cls``.

    Raises:
        FileNotFoundError: no source has the files (every reason tried is listed; for a URL entry,
            the message names the URL, the cache folder and the ways out).
        ValueError: a downloaded or cached file is not the pinned one (deleted and named).
        TypeError: a URL entry and no ``model_cls``.
    """
    if entry.url is not None and not entry.local_dir and not entry.hub_id:
        if model_cls is None:
            raise TypeError(f"converting the {entry.model!r} release needs model_cls (the network class)")
        folder = fetch_official(
            entry, model_cls, cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download
        )
        return folder / CONFIG_NAME, folder / entry.filename, entry.sha256
    sources = []
    if entry.local_dir:
        sources.append(("shipped", lambda: _shipped(entry)))
    if entry.hub_id:
        kwargs = dict(
            cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download, token=token
        )
        hub_id = entry.hub_id

        def from_hub() -> tuple[Path, Path, str | None]:
            config, weights = _hub(hub_id, entry.filename, entry.revision, **kwargs)
            return config, weights.path, entry.sha256 or weights.lfs_sha256

        sources.append(("hub", from_hub))
    if not entry.prefer_local:
        sources.reverse()
    reasons = []
    for name, resolve in sources:
        try:
            return resolve()
        except FileNotFoundError as exc:
            log.info("pretrained %s: %s source unavailable: %s", entry.model, name, exc)
            reasons.append(str(exc))
    raise FileNotFoundError(f"no pretrained weights for {entry.model!r} could be found: " + " | ".join(reasons))


def load_pretrained_weights(
    model: WeightsModel,
    entry: PretrainedEntry,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Load the weights a pretrained-table entry declares into ``model`` (in place).

    The weights file's SHA-256 is checked before it is read (against ``entry.sha256``, or for hub
    files without one the hub's published LFS hash, and against a ``.sha256`` sidecar beside it), the shipped or downloaded ``config.json`` must
    equal ``model.config``, and keys/shapes must match exactly.

    Returns:
        The weights file that was loaded.

    Raises:
        FileNotFoundError: not shipped and not downloadable (offline and not cached, missing repo or file).
        ValueError: hash mismatch, corrupt file, or a config/architecture that differs from ``model``'s.
    """
    if tuple(entry.input_size) != tuple(model.config.input_size):
        raise ValueError(
            f"pretrained entry for {entry.model!r} declares input_size {entry.input_size}, "
            f"but the model's config has {model.config.input_size}"
        )
    config_path, weights_path, expected = resolve_pretrained_files(
        entry, model_cls=type(model), cache_dir=cache_dir, local_files_only=local_files_only,
        force_download=force_download, token=token,
    )
    verify_weights_file(weights_path, expected, f"pretrained {entry.model!r}")
    config = read_config(config_path)
    if config != model.config:
        ours, theirs = model.config.model_dump(), config.model_dump()
        diff = ", ".join(f"{k}: file {theirs[k]!r} vs model {ours[k]!r}" for k in ours if ours[k] != theirs[k])
        raise ValueError(f"{config_path} describes a different architecture than {entry.model!r}: {diff}")
    load_state_dict_strict(model, read_weights(weights_path), str(weights_path))
    mark_weights_folder(model, config_path.parent)
    log.info("loaded pretrained %s from %s", entry.model, weights_path)
    return weights_path


def from_pretrained(
    source: str | os.PathLike,
    revision: str | None = None,
    *,
    model_cls: ModelClass,
    sha256: str | None = None,
    mode: ForwardMode = "split",
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> WeightsModel:
    """A ``model_cls`` with weights, from a local folder, a pretrained-table name, or a hub repo id.

    ``UniverSegPlus.from_pretrained(source, ...)`` is this with ``model_cls=UniverSegPlus``.

    Args:
        source: A folder written by :func:`save_pretrained`; a name from ``list_pretrained()``
            (``"universeg-v1"``: the official weights, downloaded once and verified); or a hub model
            repo id ``"org/repo"`` holding ``config.json`` + ``model.safetensors``.
        revision: Hub branch, tag or 40-hex commit (default ``"main"``); hub repos only.
        sha256: Expected SHA-256 of ``model.safetensors``. For hub repos without it, the hash
            the hub publishes for the LFS file is checked; for a folder, the ``model.safetensors.sha256``
            that :func:`save_pretrained` writes is checked too. A file with nothing to check against
            is loaded with a warning.
        model_cls: The network class, built as ``model_cls(config, mode=mode)``.
        mode: Forward form, ``"split"`` or ``"pairwise"``.
        cache_dir, local_files_only, force_download, token: Passed to huggingface_hub (``cache_dir``
            also replaces the user cache of URL entries).

    Raises:
        FileNotFoundError: no such folder/repo/file, or offline and not cached.
        ValueError: hash mismatch, corrupt file, invalid config, weights that do not fit the config.
    """
    hub_kwargs = dict(
        cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download, token=token
    )
    path = Path(source)
    if path.is_dir():
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to hub repos, but {source} is a local folder")
        return build_from_files(path / CONFIG_NAME, path / WEIGHTS_NAME, sha256, mode, str(path), model_cls)
    source = str(source)
    if source in PRETRAINED:
        if revision is not None or sha256 is not None:
            raise ValueError(f"{source!r} is pinned by the pretrained table; revision/sha256 cannot be overridden")
        model = model_cls(get_config(PRETRAINED[source].model), mode=mode)
        load_pretrained_weights(model, PRETRAINED[source], **hub_kwargs)
        return model
    config_path, weights_path, expected = fetch_pretrained(source, revision, model_cls=model_cls, **hub_kwargs)
    return build_from_files(config_path, weights_path, sha256 or expected, mode, f"hub repo {source!r}", model_cls)


def fetch_pretrained(
    source: str,
    revision: str | None = None,
    *,
    model_cls: ModelClass | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> tuple[Path, Path, str | None]:
    """Download (or find cached/shipped) the files of a pretrained-table name or a hub repo id.

    ``model_cls`` (the network class) is needed for a URL entry, whose checkpoint is converted on first download.

    Returns:
        ``(config.json path, weights path, expected sha256)``; the hash is the table's for a
        name, the hub's LFS hash for a repo id (``None`` if it publishes none). Not yet verified.
    """
    kwargs = dict(cache_dir=cache_dir, local_files_only=local_files_only, force_download=force_download, token=token)
    if source in PRETRAINED:
        if revision is not None:
            raise ValueError(f"{source!r} is pinned by the pretrained table; its revision cannot be overridden")
        return resolve_pretrained_files(PRETRAINED[source], model_cls=model_cls, **kwargs)
    if source.count("/") != 1 or Path(source).is_absolute() or source.startswith("."):
        raise FileNotFoundError(
            f"{source!r} is neither an existing folder, a pretrained name ({', '.join(sorted(PRETRAINED)) or 'none'}), "
            "nor a hub repo id of the form 'org/repo'"
        )
    config, weights = _hub(source, WEIGHTS_NAME, revision or "main", **kwargs)
    return config, weights.path, weights.lfs_sha256
