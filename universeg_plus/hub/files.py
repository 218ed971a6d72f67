"""Weights files on disk: atomic writes, sha256 (pinned or in a ``.sha256`` sidecar), safetensors reading
with clear errors, strict loading that refuses non-finite values."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from ..config import UniverSegConfig
from ..io.atomic import atomic_write_bytes, atomic_write_text
from ..io.hashing import sha256_file

__all__ = [
    "SHA256_SUFFIX",
    "check_sha256",
    "load_state_dict_strict",
    "read_config",
    "read_sha256_sidecar",
    "read_weights",
    "sha256_file",
    "sha256_sidecar",
    "verify_weights_file",
    "write_sha256_sidecar",
    "write_weights",
]

log = logging.getLogger(__name__)

_SHOWN = 8  # keys listed per category in a mismatch message
SHA256_SUFFIX = ".sha256"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _import_safetensors():
    try:
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - safetensors is a core dependency
        raise ImportError('reading weights needs safetensors: pip install "safetensors>=0.4"') from exc
    return safetensors.torch


def check_sha256(path: str | os.PathLike, expected: str, source: str) -> str:
    """Raise ``ValueError`` naming both hashes when ``path`` does not hash to ``expected``.

    Nothing is deleted: the file stays where it is for inspection.

    Returns:
        The (matching) hex digest.
    """
    actual = sha256_file(path)
    _compare(path, actual, expected, source)
    return actual


def sha256_sidecar(weights: str | os.PathLike) -> Path:
    """The sidecar that records a weights file's SHA-256: ``model.safetensors`` -> ``model.safetensors.sha256``."""
    weights = Path(weights)
    return weights.with_name(weights.name + SHA256_SUFFIX)


def write_sha256_sidecar(weights: str | os.PathLike, digest: str) -> Path:
    """Write ``<weights>.sha256`` in ``sha256sum`` format (``sha256sum -c`` checks it), atomically."""
    weights = Path(weights)
    return atomic_write_text(sha256_sidecar(weights), f"{digest}  {weights.name}\n")


def read_sha256_sidecar(weights: str | os.PathLike) -> str | None:
    """The SHA-256 recorded beside ``weights`` (lower-case hex), ``None`` when there is no sidecar.

    Raises:
        ValueError: the sidecar exists but does not start with a 64-hex digest (names the file).
    """
    path = sha256_sidecar(weights)
    if not path.is_file():
        return None
    try:
        first = path.read_text(encoding="utf-8").split(maxsplit=1)
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the sha256 sidecar {path}: {exc}") from None
    if not first or not _HEX64.fullmatch(first[0]):
        raise ValueError(
            f"{path} should start with the 64-hex SHA-256 of {Path(weights).name} "
            f"(as `sha256sum` writes it), found {(first[0] if first else '')[:80]!r}"
        )
    return first[0].lower()


def verify_weights_file(path: str | os.PathLike, expected: str | None, source: str) -> str:
    """Check a weights file against every hash there is for it, before it is read.

    The hashes are ``expected`` (pinned by a table, a caller or the hub) and the ``.sha256``
    sidecar :func:`save_pretrained` writes beside it; each that exists must match. With neither,
    a warning says the file is loaded unverified.

    Returns:
        The file's hex digest.

    Raises:
        ValueError: a hash differs (names the file, both hashes and where the expected one came from).
    """
    path = Path(path)
    pins = []
    if expected is not None:
        pins.append((expected, source, _REFETCH))
    recorded = read_sha256_sidecar(path)
    if recorded is not None:
        sidecar = sha256_sidecar(path).name
        hint = (
            f"If the weights were replaced on purpose, save them with save_pretrained (which rewrites {sidecar}) "
            f"or delete the stale {sidecar}; otherwise check where the file came from."
        )
        pins.append((recorded, f"{source}; hash recorded in {sidecar} when it was saved", hint))
    if not pins:
        log.warning(
            "%s (%s): no sha256 to check against (none pinned and no %s beside it); loading it unverified",
            path, source, sha256_sidecar(path).name,
        )
        return sha256_file(path)
    actual = sha256_file(path)
    for digest, where, hint in pins:
        _compare(path, actual, digest, where, hint)
    return actual


_REFETCH = "Re-download it (force_download=True) or check where it came from."


def _compare(path: str | os.PathLike, actual: str, expected: str, source: str, hint: str = _REFETCH) -> None:
    if actual != expected.lower():
        raise ValueError(
            f"sha256 mismatch for {path} ({source}): expected {expected.lower()}, got {actual}. "
            "The file was not loaded and nothing was deleted; it may be corrupt, tampered with, or a different "
            f"release than the one pinned. {hint}"
        )


def write_weights(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> Path:
    """Save a state_dict as safetensors, atomically (temp file + ``os.replace``)."""
    st = _import_safetensors()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    return atomic_write_bytes(path, st.save(tensors, metadata=metadata))


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file onto the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: truncated or corrupt file (names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    st = _import_safetensors()
    try:
        return st.load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError derives from Exception only
        raise ValueError(
            f"{path} is not a valid safetensors file (truncated or corrupt, {path.stat().st_size} bytes): {exc}"
        ) from None


def read_config(path: str | os.PathLike) -> UniverSegConfig:
    """Read a ``config.json`` written by :func:`save_pretrained`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or not a valid :class:`UniverSegConfig` (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    try:
        return UniverSegConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path} is not a valid UniverSegConfig: {exc}") from None


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model`` only if keys and shapes match exactly and every value is finite.

    Raises:
        ValueError: names the missing, unexpected and wrongly shaped keys (wrong architecture for the
            file), or the tensors holding NaN or infinite values.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k].shape
    )
    not_float = sorted(f"{k} ({state_dict[k].dtype})" for k in state_dict if not state_dict[k].is_floating_point())
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_listing(shapes)}")
    if not_float:
        problems.append(f"non-floating-point tensors: {_listing(not_float)}")
    if problems:
        raise ValueError(
            f"{source} does not fit this architecture ({len(expected)} tensors expected, file has "
            f"{len(state_dict)}): " + "; ".join(problems)
        )
    non_finite = []
    for k in sorted(state_dict):
        bad = int((~torch.isfinite(state_dict[k])).sum())
        if bad:
            non_finite.append(f"{k} ({bad} of {state_dict[k].numel()})")
    if non_finite:
        raise ValueError(
            f"{source} holds NaN or infinite values in {len(non_finite)} of {len(state_dict)} tensors: "
            f"{_listing(non_finite)}. Refusing to load them: such weights give NaN predictions (a diverged "
            "training run or a damaged file); use an earlier checkpoint or re-download"
        )
    model.load_state_dict(state_dict, strict=True)
