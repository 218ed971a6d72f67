"""Weights files on disk: atomic writes, sha256, safetensors reading with clear errors, strict loading."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from ..config import UniverSegConfig
from ..io.atomic import atomic_write_bytes
from ..io.hashing import sha256_file

__all__ = [
    "check_sha256",
    "load_state_dict_strict",
    "read_config",
    "read_weights",
    "sha256_file",
    "write_weights",
]

_SHOWN = 8  # keys listed per category in a mismatch message


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
    if actual != expected.lower():
        raise ValueError(
            f"sha256 mismatch for {path} ({source}): expected {expected.lower()}, got {actual}. "
            "The file was not loaded and nothing was deleted; it may be corrupt, tampered with, or a different "
            "release than the one pinned. Re-download it (force_download=True) or check where it came from."
        )
    return actual


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
    """Load ``state_dict`` into ``model`` only if keys and shapes match exactly.

    Raises:
        ValueError: names the missing, unexpected and wrongly shaped keys (wrong architecture for the file).
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
    model.load_state_dict(state_dict, strict=True)
