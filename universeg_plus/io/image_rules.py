"""The image rule (steps 1-5 of :mod:`universeg_plus.io.inputs`): any image in, ``(H, W)`` float32 or a model-size tensor out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checks import Named, _name, check_size, describe

__all__ = [
    "LUMA",
    "as_image_2d",
    "image_array",
    "normalize_image",
    "prepare_image",
    "probabilities_to_size",
    "resize_image",
    "standardize_image",
    "to_array",
]

LUMA = (0.299, 0.587, 0.114)
_F32_MAX = float(np.finfo(np.float32).max)
_SHAPES = "(H, W), (H, W, 1) or (H, W, 3) RGB (a tensor may also be (1, H, W) or (3, H, W))"
_CHANNELS = (1, 2, 3, 4)  # sizes of a last (array) or first (tensor) axis taken for channels
_VOLUME_HINT = "for volumes use SupportSet.from_volume or Predictor.predict_volume"


def _read(path: Path, kind: str, where: str = "", hide_path: bool = False) -> tuple[np.ndarray, Any]:
    """``(array as stored, nibabel image or None)``; with ``hide_path`` errors say ``where``, never the path."""
    from .errors import UnreadableFile
    from .images import NIFTI_SUFFIXES, read_image

    name = _name(kind, where or str(path))
    try:
        if path.name.lower().endswith(NIFTI_SUFFIXES):
            from .nifti import read_nifti

            return read_nifti(path)
        return read_image(path), None
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file" + ("" if hide_path or str(path) in name else f" {path}")) from None
    except UnreadableFile as exc:
        reason = exc.reason.replace(str(path), where) if hide_path else exc.reason
        raise ValueError(f"cannot read the {name}: {reason}") from exc


def _grey_rgb(arr: np.ndarray) -> np.ndarray:
    """A mask file/PIL image saved as RGB with three equal channels -> its one channel."""
    if arr.ndim == 3 and arr.shape[-1] == 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(
        arr[..., 0], arr[..., 2]
    ):
        return arr[..., 0]
    return arr


def to_array(x: Any, kind: str = "image", where: str = "") -> np.ndarray:
    """A NumPy view of an image-like input: array, torch tensor, PIL image, file path or :class:`Named`.

    Torch tensors are taken as ``(H, W)`` or ``(C, H, W)`` and moved to ``(H, W, C)``; arrays and files
    as stored (``(H, W)`` or ``(H, W, C)``). Half/bfloat16 tensors become float32 (lossless).

    Raises:
        TypeError: unsupported input type.
        FileNotFoundError / ValueError: missing or unreadable file (named).
    """
    mask = kind.endswith("mask")
    if isinstance(x, Named):
        if isinstance(x.value, (str, os.PathLike)):
            arr, _ = _read(Path(x.value), kind, where or x.name, hide_path=True)
            return _grey_rgb(arr) if mask else arr
        return to_array(x.value, kind, where or x.name)
    if isinstance(x, (str, os.PathLike)):
        arr, _ = _read(Path(x), kind, where)
        return _grey_rgb(arr) if mask else arr
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.is_complex():
            raise TypeError(f"{_name(kind, where or describe(x))} must be real-valued, got dtype {t.dtype}")
        if t.is_meta:
            raise TypeError(f"{_name(kind, where or describe(x))} is a tensor on the meta device, which holds no data")
        t = t.cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.ndim == 3 and t.shape[0] in _CHANNELS and t.shape[-1] not in _CHANNELS:
            t = t.permute(1, 2, 0)
        return t.numpy()
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("PIL."):
        if x.mode in ("RGBA", "LA", "P", "CMYK", "PA") and not mask:
            x = x.convert("RGB")
        arr = np.asarray(x)
        return _grey_rgb(arr) if mask else arr
    raise TypeError(
        f"{_name(kind, where)} must be a numpy array, torch tensor, PIL image or file path, got {type(x).__name__}"
    )


def as_image_2d(arr: np.ndarray, kind: str = "image", where: str = "", *, keep_rgb: bool = False) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W)`` (luminance for RGB images); anything else is an error.

    With ``keep_rgb`` an RGB image stays ``(H, W, 3)`` as stored (for a per-task colour projection,
    :mod:`universeg_plus.colour`); every other input is treated as without it.

    Raises:
        TypeError: non-numeric data.
        ValueError: 4 channels (ambiguous), 3D data (a volume or a stack), RGB masks, other shapes,
            empty images. The message lists the shapes accepted.
    """
    name = _name(kind, where)
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (bool, integer or float), got dtype {a.dtype}")
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    while a.ndim > 2 and a.shape[-1] == 1:
        a = a[..., 0]
    mask = kind.endswith("mask")
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        c = a.shape[-1]
        raise ValueError(
            f"{name} has {c} channels (shape {tuple(a.shape)} as (H, W, C)), which is ambiguous: "
            f"{'RGBA' if c == 4 else 'grey + alpha'} or {c} slices? A 2D {'mask' if mask else 'image'} is {_SHAPES}; "
            f"for {'RGBA pass image[..., :3]' if c == 4 else 'grey + alpha pass image[..., 0]'}, {_VOLUME_HINT}"
        )
    if a.ndim == 3 and a.shape[-1] == 3:
        if mask:
            raise ValueError(
                f"{name} is a colour image, not a mask (shape {tuple(arr.shape)}): save masks as single-channel "
                "label maps (0 = background, 1, 2, ... or 0/255)"
            )
        if keep_rgb:
            if a.shape[0] < 1 or a.shape[1] < 1:
                raise ValueError(f"{name} is empty: shape {tuple(arr.shape)}; it needs at least 1x1 pixels")
            return a
        a = a[..., :3].astype(np.float64) @ np.asarray(LUMA)
    if a.ndim == 3:
        first = " (channels first? move them last: np.moveaxis(a, 0, -1))" if a.shape[0] in (3, 4) else ""
        raise ValueError(
            f"{name} is a 3D volume or a stack of images, not a 2D image: it must be 2D {_SHAPES}, "
            f"got shape {tuple(arr.shape)}{first}; {_VOLUME_HINT}"
        )
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2D {_SHAPES}, got shape {tuple(arr.shape)}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {tuple(arr.shape)}; it needs at least 1x1 pixels")
    return a


def _check_finite(a: np.ndarray, kind: str, where: str) -> None:
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(
                f"{_name(kind, where)} contains NaN or inf values ({int(bad.sum())} of {a.size} pixels); "
                "replace them (e.g. np.nan_to_num) before segmenting"
            )


def image_array(x: Any, kind: str = "image", where: str = "", *, keep_rgb: bool = False) -> np.ndarray:
    """Steps 1-3 of the image rule: any image input -> ``(H, W)`` float32, finite.

    With ``keep_rgb`` an RGB image comes back ``(H, W, 3)``, finite, its dtype as stored (``uint8``
    0-255, float in [0, 1]...), for :mod:`universeg_plus.colour` to project; other images as without it.

    Raises:
        TypeError / ValueError / FileNotFoundError: see :func:`to_array` and :func:`as_image_2d`; NaN or
        inf values; values beyond float32's range.
    """
    where = where or describe(x)
    a = as_image_2d(to_array(x, kind, where), kind, where, keep_rgb=keep_rgb)
    _check_finite(a, kind, where)
    if a.ndim == 3:  # RGB kept (keep_rgb): its dtype says its value range
        return np.ascontiguousarray(a)
    if a.dtype != np.float32:
        if a.dtype.kind == "f" and a.size and float(np.abs(a).max()) > _F32_MAX:
            raise ValueError(
                f"{_name(kind, where)} has values beyond the float32 range (max |x| = {float(np.abs(a).max()):.3g}); "
                "rescale it first"
            )
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


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


def prepare_image(x: Any, size: Sequence[int] = (128, 128), *, where: str = "", kind: str = "image") -> torch.Tensor:
    """Grayscale, check, resize and min-max to [0, 1] one image (the order in the module docstring).

    Args:
        x: ``(H, W)`` / ``(H, W, 3)`` array, ``(H, W)`` / ``(C, H, W)`` tensor, PIL image, file path or
            :class:`Named`.
        size: Output ``(H, W)``.
        where: Name of the input for error messages (default: its name, path, or type and shape).
        kind: Its role in messages (``"image"``, ``"target"``, ``"support image"``).

    Returns:
        ``(1, H, W)`` float32 tensor in [0, 1].

    Raises:
        ValueError: NaN/inf values, wrong shape (3+D, 4 channels), empty image.
        TypeError: unsupported input type.
    """
    size = check_size(size)
    return standardize_image(torch.from_numpy(image_array(x, kind, where)), size)[None]


def probabilities_to_size(probs: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """Model-size probabilities ``(C, h, w)`` -> ``(C, H, W)`` float32 in [0, 1] at an image's own size.

    The one rule for bringing predictions back to the input's size: bilinear interpolation
    (``align_corners=False``, no antialiasing), clamped to [0, 1].
    """
    size = check_size(size)
    p = probs.detach().float().cpu()
    if tuple(p.shape[-2:]) != size:
        p = F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0]
    return p.clamp(0.0, 1.0).numpy().astype(np.float32)
