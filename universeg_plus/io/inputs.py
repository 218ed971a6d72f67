"""What an image, a mask and a volume are, and how each becomes a model-size tensor.

This module is the one place that holds the input rules; training (``data.tasks``), evaluation,
``SupportSet``, ``Predictor``, the CLI and the demo all call it, so the network meets the same input
whichever way an image arrives.

Images (:func:`prepare_image`), in this order:

1. Read (PNG/JPEG/TIFF/BMP/NPY/NIfTI file, NumPy array, torch tensor or PIL image) as stored.
2. Squeeze a singleton channel axis; RGB(A) -> grayscale by luminance ``0.299 R + 0.587 G + 0.114 B``
   (alpha dropped).
3. Check: numeric, 2D, non-empty, finite.
4. Resize to the model input size with antialiased bilinear interpolation (a tent filter widened by
   the down-sampling factor; plain bilinear when up-sampling), in float32.
5. Per-image min-max scaling of the resized image to [0, 1] (so every prepared image spans exactly
   0..1); an image that is constant before resizing becomes all zeros.

Masks (:func:`prepare_mask`, :func:`resize_indicators`): binary (bool, {0, 1}, or {0, 255} as in
8-bit PNG masks) or integer label maps (0 = background). Each label's indicator is resized with the
same antialiased bilinear filter as the images; a pixel takes the label with the largest resized
weight, ties going to the lower label (background first). For one binary indicator this is
"resized weight > 0.5", the rule training uses for every (label or label-group) task.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MaskResize",
    "as_image_2d",
    "as_label_map",
    "check_size",
    "describe",
    "normalize_image",
    "prepare_image",
    "prepare_mask",
    "resize_image",
    "standardize_image",
    "resize_indicators",
    "to_array",
]

MaskResize = Literal["area", "nearest"]
LUMA = (0.299, 0.587, 0.114)


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as two positive ints ``(H, W)``; ``ValueError`` otherwise."""
    if len(size) != 2 or any(int(s) != s or int(s) < 1 for s in size):
        raise ValueError(f"size must be two positive integers (H, W), got {tuple(size)}")
    return int(size[0]), int(size[1])


def describe(x: Any) -> str:
    """A short name for an input in error messages (its path, or its type and shape)."""
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}{tuple(shape) if shape is not None else ''}"


def to_array(x: Any, kind: str = "image") -> np.ndarray:
    """A NumPy view of an image-like input: array, torch tensor, PIL image or file path.

    Torch tensors are taken as ``(H, W)`` or ``(C, H, W)`` and moved to ``(H, W, C)``; arrays and files
    as stored (``(H, W)`` or ``(H, W, C)``).

    Raises:
        TypeError: unsupported input type.
        FileNotFoundError / ValueError: missing or unreadable file.
    """
    if isinstance(x, (str, os.PathLike)):
        from .images import read_image

        return read_image(x)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.ndim == 3 and t.shape[0] in (1, 3, 4) and t.shape[-1] not in (1, 3, 4):
            t = t.permute(1, 2, 0)
        return t.numpy()
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("PIL."):
        return np.asarray(x.convert("RGB") if x.mode in ("RGBA", "LA", "P", "CMYK") and kind == "image" else x)
    raise TypeError(
        f"{kind} must be a numpy array, torch tensor, PIL image or file path, got {type(x).__name__}"
    )


def as_image_2d(arr: np.ndarray, kind: str = "image", where: str = "") -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W)`` (luminance for RGB images); anything else is an error."""
    a = arr
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and kind == "image":
        rgb = a[..., :3].astype(np.float64)
        a = rgb @ np.asarray(LUMA)
    if a.ndim != 2:
        extra = " (RGB masks are not label maps: save masks as single-channel)" if kind == "mask" else ""
        raise ValueError(
            f"{kind} {where} must be 2D (H, W) or (H, W, 3) RGB, got shape {tuple(arr.shape)}{extra}; "
            "for volumes use SupportSet.from_volume or Predictor.predict_volume"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{kind} {where} is empty: shape {tuple(arr.shape)}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{kind} {where} must be numeric, got dtype {a.dtype}")
    return a


def normalize_image(t: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1] (float32); a constant image becomes zeros."""
    t = t.float()
    lo, hi = t.min(), t.max()
    return (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)


def _resample(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(t.shape[-2:]) == size:
        return t
    lead = t.shape[:-2]
    x = F.interpolate(t.reshape(-1, 1, *t.shape[-2:]), size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.reshape(*lead, *size)


def resize_image(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Antialiased bilinear resize of ``(..., H, W)`` images already in [0, 1], clamped to [0, 1]."""
    return _resample(t.float(), check_size(size)).clamp(0.0, 1.0)


def standardize_image(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Steps 4-5 of the image rule: ``(H, W)`` finite intensities -> ``(H, W)`` at ``size`` in [0, 1]."""
    size = check_size(size)
    t = t.float()
    if not t.amax() > t.amin():  # checked before resizing, whose round-off would min-max into noise
        return torch.zeros(size)
    return normalize_image(_resample(t, size)).clamp_(0.0, 1.0)


def prepare_image(x: Any, size: Sequence[int] = (128, 128), *, where: str = "") -> torch.Tensor:
    """Grayscale, check, resize and min-max to [0, 1] one image (the order in the module docstring).

    Args:
        x: ``(H, W)`` / ``(H, W, 3|4)`` array, ``(H, W)`` / ``(C, H, W)`` tensor, PIL image or file path.
        size: Output ``(H, W)``.
        where: Name of the input for error messages (default: its path or type and shape).

    Returns:
        ``(1, H, W)`` float32 tensor in [0, 1].

    Raises:
        ValueError: NaN/inf values, wrong shape (3+D), empty image.
        TypeError: unsupported input type.
    """
    size = check_size(size)
    where = where or describe(x)
    a = as_image_2d(to_array(x, "image"), "image", where)
    a = a.astype(np.float32) if a.dtype != np.float32 else a
    if not np.isfinite(a).all():
        raise ValueError(f"image {where} contains NaN or inf values")
    return standardize_image(torch.from_numpy(np.ascontiguousarray(a)), size)[None]


def as_label_map(x: Any, where: str = "") -> np.ndarray:
    """A mask as an ``(H, W)`` int64 label map (bool -> {0, 1}; floats must be integral).

    Raises:
        ValueError: NaN/inf, non-integer or negative values, wrong shape.
        TypeError: non-numeric data.
    """
    where = where or describe(x)
    a = as_image_2d(to_array(x, "mask"), "mask", where)
    if a.dtype == bool:
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError(f"mask {where} contains NaN or inf values")
        if not np.array_equal(a, np.round(a)):
            raise ValueError(
                f"mask {where} is neither binary nor an integer label map: found non-integer values "
                f"(e.g. {a[a != np.round(a)].flat[0]}); threshold soft masks first"
            )
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"mask {where} has negative label {a.min()}; labels must be >= 0 (0 = background)")
    return a


def resize_indicators(indicators: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(G, H, W)`` {0, 1} indicators to ``(G, h, w)`` float {0, 1}: resized weight > 0.5."""
    size = check_size(size)
    ind = indicators.float()
    if tuple(ind.shape[-2:]) == size:
        return (ind > 0.5).float()
    soft = F.interpolate(ind[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (soft > 0.5).float()


def prepare_mask(labels: np.ndarray | torch.Tensor, size: Sequence[int], mode: MaskResize = "area") -> torch.Tensor:
    """Resize an integer label map ``(H, W)`` to ``size``; returns ``(1, h, w)`` float32 label values.

    ``"area"`` (default): each label's indicator is resized with the image filter and the pixel takes
    the label of largest weight (ties to the lower label); ``"nearest"``: nearest source pixel.
    """
    size = check_size(size)
    t = torch.as_tensor(np.ascontiguousarray(labels) if isinstance(labels, np.ndarray) else labels).long()
    if tuple(t.shape) == size:
        return t.float()[None]
    if mode == "nearest":
        return F.interpolate(t[None, None].float(), size=size, mode="nearest-exact")[0]
    if mode != "area":
        raise ValueError(f"mask resize mode must be 'area' or 'nearest', got {mode!r}")
    values = torch.unique(t)
    if len(values) == 1:
        return torch.full((1, *size), float(values[0]))
    onehot = (t[None] == values[:, None, None]).float()[None]  # (1, L, H, W)
    soft = F.interpolate(onehot, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    # argmax returns the first maximum: ties go to the lowest label (background first)
    return values[soft.argmax(dim=0)].float()[None]
