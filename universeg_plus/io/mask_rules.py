"""The mask rule: binary or integer label maps, checked, and resized label by label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .checks import _name, check_size, describe
from .image_rules import _check_finite, as_image_2d, to_array

__all__ = ["MAX_LABELS", "MaskResize", "as_label_map", "binary_from_255", "prepare_mask", "resize_indicators"]

MaskResize = Literal["area", "nearest"]
#: Most labels (non-zero values) a mask may hold unless ``max_labels`` says otherwise.
MAX_LABELS = 32


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
