"""What an image, a mask and a volume are, and how each becomes a model-size tensor.

This module is the one place that holds the input rules; training (``data.tasks``), evaluation,
``SupportSet``, ``Predictor``, the CLI and the demo all call it, so the network meets the same input
whichever way an image arrives, and every error names the input it is about.

Images (:func:`prepare_image`), in this order:

1. Read (PNG/JPEG/TIFF/BMP/NPY/NIfTI file, NumPy array, torch tensor or PIL image) as stored.
2. Squeeze singleton axes; RGB -> grayscale by luminance ``0.299 R + 0.587 G + 0.114 B``. Files and
   PIL images in RGBA/LA/CMYK/palette modes are converted to RGB first; an array with 4 channels is
   refused (RGBA or 4 slices? say which: ``image[..., :3]`` or a volume function).
3. Check: numeric, 2D, non-empty, finite (and within float32's range).
4. Resize to the model input size with antialiased bilinear interpolation (a tent filter widened by
   the down-sampling factor; plain bilinear when up-sampling), in float32.
5. Per-image min-max scaling of the resized image to [0, 1] (so every prepared image spans exactly
   0..1); an image that is constant before resizing becomes all zeros.

Masks (:func:`as_label_map`, :func:`prepare_mask`, :func:`resize_indicators`): binary (bool, {0, 1},
or {0, 255} as in 8-bit PNG masks, see :func:`binary_from_255`) or integer label maps
(0 = background), single-channel (a mask *file* saved as RGB with three equal channels is read as
one channel). At the public boundary a mask may hold at most :data:`MAX_LABELS` labels (more looks
like an image given as a mask; ``max_labels=`` raises the limit). Each label's indicator is resized
with the same antialiased bilinear filter as the images; a pixel takes the label with the largest
resized weight, ties going to the lower label (background first). For one binary indicator this is
"resized weight > 0.5", the rule training uses for every (label or label-group) task.

Volumes (:func:`volume_array`, :func:`read_input`): 3D ``(X, Y, Z)`` NIfTI or NPY data (trailing
singleton axes squeezed), segmented slice by slice along an axis.

Names: every function takes ``kind`` (the input's role: ``"image"``, ``"support mask"``,
``"target"``...) and ``where`` (its name: a file, ``"#3"``); messages read ``"<kind> <where> ..."``.
Wrap an input in :class:`Named` to give it the name its messages use (the demo names uploads by
their own file names, not by their temporary paths).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MAX_LABELS",
    "InputFile",
    "MaskResize",
    "Named",
    "as_batch",
    "as_count",
    "as_image_2d",
    "as_label_map",
    "binary_from_255",
    "check_size",
    "describe",
    "image_array",
    "normalize_image",
    "output_name",
    "output_suffix",
    "prepare_image",
    "prepare_mask",
    "prepare_pairs",
    "read_input",
    "read_pairs",
    "resize_image",
    "probabilities_to_size",
    "resize_indicators",
    "standardize_image",
    "take_slice",
    "to_array",
    "volume_array",
]

MaskResize = Literal["area", "nearest"]
LUMA = (0.299, 0.587, 0.114)
#: Most labels (non-zero values) a mask may hold unless ``max_labels`` says otherwise.
MAX_LABELS = 32
_F32_MAX = float(np.finfo(np.float32).max)
_SHAPES = "(H, W), (H, W, 1) or (H, W, 3) RGB (a tensor may also be (1, H, W) or (3, H, W))"
_CHANNELS = (1, 2, 3, 4)  # sizes of a last (array) or first (tensor) axis taken for channels
_VOLUME_HINT = "for volumes use SupportSet.from_volume or Predictor.predict_volume"


@dataclass(frozen=True)
class Named:
    """An input (path, array, tensor or PIL image) with the name its error messages use.

    ``Named("/tmp/gradio/abc/case1.png", "case1.png")`` is read from the path but called
    ``case1.png``; ``SupportSet`` also takes the example name from it.
    """

    value: Any
    name: str


def _name(kind: str, where: str) -> str:
    return f"{kind} {where}".strip()


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as two positive ints ``(H, W)``; ``ValueError`` otherwise."""
    try:
        ok = len(size) == 2 and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 1 for s in size
        )
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def describe(x: Any) -> str:
    """A short name for an input in error messages (its :class:`Named` name, path, or type and shape)."""
    if isinstance(x, Named):
        return x.name
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}{tuple(shape) if shape is not None else ''}"


def as_count(value: Any, name: str, low: int = 1, high: int | None = None, note: str = "") -> int:
    """An option that counts something (ensemble members, support examples): an int in ``low..high``.

    ``note`` follows the range in messages (e.g. ``" (the support set size)"``).

    Raises:
        TypeError: not an integer (bools are not counts: ``ensemble=True`` is refused).
        ValueError: out of range.
    """
    if high is not None:
        span = f"an integer in {low}..{high}"
    else:
        span = "a positive integer" if low == 1 else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be {span}{note}, got {value!r} ({type(value).__name__})"
            + ("; bools are not counts" if isinstance(value, bool) else "")
        )
    v = int(value)
    if v < low or (high is not None and v > high):
        raise ValueError(f"{name} must be {span}{note}, got {v}")
    return v


# ---------------------------------------------------------------------- reading
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


def as_image_2d(arr: np.ndarray, kind: str = "image", where: str = "") -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(H, W)`` (luminance for RGB images); anything else is an error.

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


def image_array(x: Any, kind: str = "image", where: str = "") -> np.ndarray:
    """Steps 1-3 of the image rule: any image input -> ``(H, W)`` float32, finite.

    Raises:
        TypeError / ValueError / FileNotFoundError: see :func:`to_array` and :func:`as_image_2d`; NaN or
        inf values; values beyond float32's range.
    """
    where = where or describe(x)
    a = as_image_2d(to_array(x, kind, where), kind, where)
    _check_finite(a, kind, where)
    if a.dtype != np.float32:
        if a.dtype.kind == "f" and a.size and float(np.abs(a).max()) > _F32_MAX:
            raise ValueError(
                f"{_name(kind, where)} has values beyond the float32 range (max |x| = {float(np.abs(a).max()):.3g}); "
                "rescale it first"
            )
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------- images
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


# ---------------------------------------------------------------------- masks
def as_label_map(x: Any, where: str = "", *, kind: str = "mask", max_labels: int | None = None) -> np.ndarray:
    """A mask as an ``(H, W)`` int64 label map (bool -> {0, 1}; floats must be integral).

    Args:
        x: Array, tensor, PIL image, file path or :class:`Named`.
        where: Its name in messages.
        kind: Its role in messages (must end in ``"mask"``).
        max_labels: Refuse more than this many labels (non-zero values); ``None``: no limit.

    Raises:
        ValueError: NaN/inf, non-integer or negative values, too many labels, wrong shape.
        TypeError: non-numeric data.
    """
    where = where or describe(x)
    a = as_image_2d(to_array(x, kind, where), kind, where)
    name = _name(kind, where)
    if a.dtype == bool:
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        _check_finite(a, kind, where)
        if not np.array_equal(a, np.round(a)):
            raise ValueError(
                f"{name} is neither binary nor an integer label map: found non-integer values "
                f"(e.g. {a[a != np.round(a)].flat[0]}); threshold soft masks first"
            )
        if np.abs(a).max() >= 2**62:
            raise ValueError(f"{name} has labels too large for int64 (max {a.max():.3g})")
    a = a.astype(np.int64)
    if a.min() < 0:
        raise ValueError(f"{name} has negative label {a.min()}; labels must be >= 0 (0 = background)")
    if max_labels is not None:
        values = np.unique(a)
        if np.count_nonzero(values) > max_labels:
            raise ValueError(
                f"{name} has {len(values)} distinct values, which looks like an image, not a mask: a mask is "
                f"binary (0/1 or 0/255) or a label map with at most {max_labels} labels "
                "(pass max_labels= to allow more)"
            )
    return a


def binary_from_255(label_maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    """8-bit binary masks: when every map holds only 0 and 255 (and some 255), 255 becomes 1."""
    present: set[int] = set()
    for lab in label_maps:
        present.update(np.unique(lab).tolist())
    if present <= {0, 255} and 255 in present:
        return [(lab == 255).astype(np.int64) for lab in label_maps]
    return list(label_maps)


def resize_indicators(indicators: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(G, H, W)`` {0, 1} indicators to ``(G, h, w)`` float {0, 1}: resized weight > 0.5."""
    size = check_size(size)
    ind = indicators.float()
    if tuple(ind.shape[-2:]) == size:
        return (ind > 0.5).float()
    soft = F.interpolate(ind[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (soft > 0.5).float()


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


def prepare_mask(labels: np.ndarray | torch.Tensor, size: Sequence[int], mode: MaskResize = "area") -> torch.Tensor:
    """Resize an integer label map ``(H, W)`` to ``size``; returns ``(1, h, w)`` float32 label values.

    ``"area"`` (default): each label's indicator is resized with the image filter and the pixel takes
    the label of largest weight (ties to the lower label); ``"nearest"``: nearest source pixel.
    """
    size = check_size(size)
    if mode not in ("area", "nearest"):
        raise ValueError(f"mask resize mode must be 'area' or 'nearest', got {mode!r}")
    t = torch.as_tensor(np.ascontiguousarray(labels) if isinstance(labels, np.ndarray) else labels).long()
    if tuple(t.shape) == size:
        return t.float()[None]
    if mode == "nearest":
        return F.interpolate(t[None, None].float(), size=size, mode="nearest-exact")[0]
    values = torch.unique(t)
    if len(values) == 1:
        return torch.full((1, *size), float(values[0]))
    onehot = (t[None] == values[:, None, None]).float()[None]  # (1, L, H, W)
    soft = F.interpolate(onehot, size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    # argmax returns the first maximum: ties go to the lowest label (background first)
    return values[soft.argmax(dim=0)].float()[None]


# ---------------------------------------------------------------------- lists and pairs
def _is_stack(x: np.ndarray | torch.Tensor) -> bool:
    if isinstance(x, torch.Tensor):
        return x.ndim == 3 and x.shape[0] not in _CHANNELS
    return x.ndim == 3 and x.shape[-1] not in _CHANNELS


def as_batch(x: Any, kind: str, *, single: bool = True) -> tuple[list[Any], bool]:
    """Split an input into its images: ``(items, batched)``.

    A list/tuple is a batch; so is a stacked ``(N, 1, H, W)`` array/tensor, and (with
    ``single=False``) every 3D array/tensor. With ``single=True`` an ``(N, H, W)`` array whose last
    axis is not 1..4 (a channel axis), or tensor whose first axis is not 1..4, is refused as
    ambiguous (N images, N slices or N channels?). Anything else is one image.

    Raises:
        ValueError: an empty list, a 4D array that is not ``(N, 1, H, W)``, an ambiguous 3D array, or
            (``single=False``) one image.
        TypeError: (``single=False``) a single path or an unsupported type.
    """
    if isinstance(x, (list, tuple)):
        if not x:
            raise ValueError(f"no {kind}s given: the list is empty")
        return list(x), True
    stacked = f"(N, H, W) or (N, 1, H, W) {kind}s"
    if isinstance(x, (np.ndarray, torch.Tensor)):
        if x.ndim == 4 and x.shape[1] == 1:
            if x.shape[0] == 0:
                raise ValueError(f"no {kind}s given: the stack {tuple(x.shape)} is empty")
            return list(x[:, 0]), True
        if x.ndim == 3 and single and _is_stack(x):
            n = x.shape[0]
            raise ValueError(
                f"the {kind} has shape {tuple(x.shape)}, which is ambiguous: {n} images, {n} slices of a volume, "
                f"or one image with {n} channels? For {n} images pass a list or an (N, 1, H, W) stack "
                f"(or use predict_many); for a volume use Predictor.predict_volume; a 2D image is {_SHAPES}"
            )
        if x.ndim == 3 and not single:
            if x.shape[0] == 0:
                raise ValueError(f"no {kind}s given: the stack {tuple(x.shape)} is empty")
            return list(x), True
        if x.ndim >= 4 or not single:
            raise ValueError(
                f"{kind}s must be a 2D image {_SHAPES}, a list of them, or a stack {stacked}; "
                f"got shape {tuple(x.shape)}"
            )
        return [x], False
    if not single:
        what = "a single path" if isinstance(x, (str, os.PathLike, Named)) else type(x).__name__
        raise TypeError(f"{kind}s must be a list of images or a stack {stacked}, got {what}")
    return [x], False


def _item_name(x: Any, k: int) -> str:
    if isinstance(x, Named):
        return x.name
    if isinstance(x, (str, os.PathLike)):
        return f"#{k} ({x})"
    return f"#{k}"


def _hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def prepare_pairs(
    images: Sequence[Any],
    masks: Sequence[Any],
    size: Sequence[int],
    mask_resize: MaskResize = "area",
    *,
    max_labels: int | None = MAX_LABELS,
    kinds: tuple[str, str] = ("support image", "support mask"),
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Prepare (image, mask) pairs: images by :func:`prepare_image`, masks by :func:`as_label_map`,
    :func:`binary_from_255` over the whole set, and :func:`prepare_mask`.

    Returns:
        ``(images (N, 1, H, W) float32 in [0, 1], masks (N, 1, H, W) float32 labels, original (H, W) sizes)``.

    Raises:
        ValueError: counts differ, empty, an image and its mask differ in size, or any image/mask
            error (named ``"support image #3 (path)"``, or by its :class:`Named` name).
    """
    size = check_size(size)
    if mask_resize not in ("area", "nearest"):
        raise ValueError(f"mask_resize must be 'area' or 'nearest', got {mask_resize!r}")
    arrays, label_maps = read_pairs(images, masks, max_labels=max_labels, kinds=kinds)
    prepared = torch.stack([standardize_image(torch.from_numpy(a), size)[None] for a in arrays])
    masks_t = torch.stack([prepare_mask(lab, size, mask_resize) for lab in label_maps])
    return prepared, masks_t, [(int(a.shape[0]), int(a.shape[1])) for a in arrays]


def read_pairs(
    images: Sequence[Any],
    masks: Sequence[Any],
    *,
    max_labels: int | None = MAX_LABELS,
    kinds: tuple[str, str] = ("support image", "support mask"),
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(image, mask) pairs at their own sizes: images by :func:`image_array`, masks by
    :func:`as_label_map` and :func:`binary_from_255` over the whole set.

    Returns:
        ``(images, label maps)``: ``(H, W)`` float32 (finite) and ``(H, W)`` int64, pair by pair the same size.

    Raises:
        ValueError: counts differ, empty, an image and its mask differ in size, or any image/mask error.
    """
    if len(images) != len(masks):
        raise ValueError(f"got {len(images)} images but {len(masks)} masks; they must pair up")
    if not len(images):
        raise ValueError("the support set is empty: need at least one (image, mask) pair")
    arrays, label_maps = [], []
    for k, (img, msk) in enumerate(zip(images, masks)):
        where_i, where_m = _item_name(img, k), _item_name(msk, k)
        image = image_array(img, kinds[0], where_i)
        labels = as_label_map(msk, where_m, kind=kinds[1], max_labels=max_labels)
        if image.shape != labels.shape:
            raise ValueError(
                f"{_name(kinds[0], where_i)} is {_hw(image.shape)} pixels but its mask {where_m} is "
                f"{_hw(labels.shape)} pixels: a mask must have its image's size (image size "
                f"{tuple(image.shape)}, mask size {tuple(labels.shape)})"
            )
        arrays.append(image)
        label_maps.append(labels)
    return arrays, binary_from_255(label_maps)


# ---------------------------------------------------------------------- volumes and files
def _squeeze_trailing(arr: np.ndarray) -> np.ndarray:
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def volume_array(x: Any, kind: str = "volume", where: str = "") -> np.ndarray:
    """A 3D volume ``(X, Y, Z)`` from a NIfTI/NPY path, array, tensor or :class:`Named` (as stored).

    Raises:
        ValueError: not 3D after squeezing trailing singleton axes, or empty.
        TypeError: non-numeric data or an unsupported type.
    """
    if isinstance(x, Named) and isinstance(x.value, (str, os.PathLike)):
        arr = _read(Path(x.value), kind, where or x.name, hide_path=True)[0]
        return _checked_volume(arr, kind, where or x.name)
    if isinstance(x, Named):
        return volume_array(x.value, kind, where or x.name)
    where = where or describe(x)
    if isinstance(x, (str, os.PathLike)):
        arr = _read(Path(x), kind, where)[0]
    elif isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        arr = (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy()
    elif isinstance(x, np.ndarray):
        arr = x
    else:
        raise TypeError(f"{_name(kind, where)} must be a numpy array, torch tensor or file path, got {type(x).__name__}")
    return _checked_volume(arr, kind, where)


def _checked_volume(arr: np.ndarray, kind: str, where: str) -> np.ndarray:
    arr = _squeeze_trailing(np.asarray(arr))
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{_name(kind, where)} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 3:
        raise ValueError(f"{_name(kind, where)} must be a 3D volume (X, Y, Z), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{_name(kind, where)} is empty: shape {arr.shape}")
    return arr


def take_slice(
    volume: np.ndarray, axis: int, index: int | None = None, *, kind: str = "volume", where: str = ""
) -> tuple[np.ndarray, int]:
    """Slice ``index`` (default: the middle one) of a 3D ``volume`` along ``axis``: ``(slice, index)``.

    Raises:
        ValueError: an axis other than 0, 1, 2 or an index out of range (the message gives the range).
    """
    from .nifti import volume_slices

    axis = as_count(axis, "the slicing axis", 0, 2)
    slices = volume_slices(volume, axis)
    depth = slices.shape[0]
    index = depth // 2 if index is None else as_count(index, "the slice index", 0)
    if index >= depth:
        raise ValueError(
            f"slice index {index} is out of range: the {_name(kind, where)} has {depth} slices along axis {axis} "
            f"(0..{depth - 1})"
        )
    return np.asarray(slices[index]), index


@dataclass
class InputFile:
    """A file to segment, as read: a 2D image or a 3D volume.

    Attributes:
        data: ``(H, W)`` / ``(H, W, 3)`` image or ``(X, Y, Z)`` volume, values as stored.
        path: Where it was read from.
        name: Its name in messages (the file name, or a :class:`Named` name).
        is_volume: Whether ``data`` is a volume.
        nifti: The nibabel image of a NIfTI file (affine and header for the output), else ``None``.
    """

    data: np.ndarray
    path: Path
    name: str
    is_volume: bool
    nifti: Any | None = None

    @property
    def output_suffixes(self) -> tuple[str, ...]:
        """Suffixes a label output of this input may have; the first is the default (same kind of file)."""
        return _output_suffixes(self.nifti is not None, self.is_volume)


def _output_suffixes(nifti: bool, volume: bool) -> tuple[str, ...]:
    if volume:
        return (".nii.gz", ".nii", ".npy") if nifti else (".npy", ".nii.gz", ".nii")
    return (".nii.gz", ".nii", ".png", ".npy") if nifti else (".png", ".npy")


def _is_volume_shape(shape: tuple[int, ...], path: Path) -> bool:
    from .images import is_volume

    return is_volume(np.broadcast_to(np.uint8(0), shape), path)


def read_input(x: str | os.PathLike | Named, kind: str = "target") -> InputFile:
    """Read a file to segment and decide what it is (2D image or 3D volume).

    NIfTI files keep their nibabel image; a NIfTI ``(X, Y, 1)`` is a 2D image ``(X, Y)``. Other files
    are volumes when :func:`universeg_plus.io.images.is_volume` says so (3D NPY without a channel axis).

    Raises:
        FileNotFoundError: missing file. ValueError: unreadable, or not 2D/3D (named).
    """
    from .images import NIFTI_SUFFIXES

    where = x.name if isinstance(x, Named) else ""
    path = Path(x.value if isinstance(x, Named) else x)
    name = where or path.name
    arr, nifti = _read(path, kind, name, hide_path=bool(where))
    arr = _squeeze_trailing(np.asarray(arr))
    is_nifti = path.name.lower().endswith(NIFTI_SUFFIXES)
    if is_nifti and arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"the {kind} {name} has shape {arr.shape}: only 2D images and 3D volumes are supported"
        )
    volume = arr.ndim == 3 and (is_nifti or _is_volume_shape(arr.shape, path))
    return InputFile(arr, path, name, volume, nifti)


def output_suffix(path: str | os.PathLike) -> str:
    """The default label-output suffix for input ``path`` (reads only an NPY header, nothing else).

    ``.nii.gz`` for NIfTI, ``.npy`` for 3D NPY volumes, ``.png`` for 2D images: what
    :func:`read_input` followed by ``InputFile.output_suffixes[0]`` gives.

    Raises:
        ValueError: an unreadable NPY header.
    """
    from .images import NIFTI_SUFFIXES

    p = Path(path)
    if p.name.lower().endswith(NIFTI_SUFFIXES):
        return ".nii.gz"
    if p.suffix.lower() == ".npy":
        try:
            shape = np.load(p, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the target {p.name}: {exc}") from exc
        squeezed = _squeeze_trailing(np.broadcast_to(np.uint8(0), shape)).shape
        return _output_suffixes(False, len(squeezed) == 3 and _is_volume_shape(squeezed, p))[0]
    return ".png"


def output_name(path: str | os.PathLike) -> str:
    """The default label-output file name of input ``path``: ``<stem><output_suffix>``.

    An NPY whose header cannot be read gets ``.png`` here; segmenting it reports the error.
    """
    from .images import file_stem

    try:
        suffix = output_suffix(path)
    except ValueError:
        suffix = ".png"
    return f"{file_stem(path)}{suffix}"
