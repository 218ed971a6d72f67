"""The one device rule of every entry point, and checking that a user's device exists here.

``"auto"`` is CUDA when available, else the CPU: the default of ``example``, ``segment``, ``evaluate``,
``ablate``, ``robustness``, the demo and a :class:`~universeg_plus.predictor.Predictor` built from a
model name. A device that does not exist here is refused in one wording.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["AUTO", "check_device_name", "cpu_model", "resolve_device"]

AUTO = "auto"


def check_device_name(device: str | torch.device) -> str:
    """``device`` as a name, checked to be ``"auto"`` or a torch device, but not that it exists here:
    for a device that another machine resolves (a Ray worker on its node).

    Returns:
        ``"auto"``, or the torch device's name (``"cuda:1"``).

    Raises:
        ValueError: not a device name.
    """
    if isinstance(device, str) and device.strip().lower() == AUTO:
        return AUTO
    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})"
        ) from None


def resolve_device(device: str | torch.device | None = AUTO) -> torch.device | None:
    """``device`` parsed and checked to exist here.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), any torch device string or object
            (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), or ``None``, which stays ``None`` (the
            caller's default, e.g. the device a model object is already on).

    Raises:
        ValueError: not a device name.
        RuntimeError: a device that does not exist here (CUDA or MPS unavailable, a CUDA index beyond
            the devices present); the message says what to use instead.
    """
    if device is None:
        return None
    name = check_device_name(device)
    if name == AUTO:
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise RuntimeError(
                f"device {str(device)!r} was asked for, but CUDA is not available here ({why}); use 'cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {str(device)!r} was asked for, but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {str(device)!r} was asked for, but MPS is not available here; use 'cpu' or 'auto'")
    return dev


def cpu_model() -> str:
    """This machine's CPU model name (``/proc/cpuinfo``'s ``model name``, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
