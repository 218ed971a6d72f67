"""Parsing a user's device and checking that it exists here."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` parsed and checked to exist here; ``None`` stays ``None`` (the caller's default).

    Raises:
        ValueError: not a torch device string. RuntimeError: a device that does not exist here
            (CUDA or MPS unavailable, a CUDA index beyond the devices present).
    """
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise RuntimeError(f"device {str(device)!r} was asked for, but CUDA is not available here ({why}); use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {str(device)!r} was asked for, but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {str(device)!r} was asked for, but MPS is not available here; use 'cpu'")
    return dev
