"""Lists, stacks and (image, mask) pairs: how several inputs are split and checked together."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .checks import Named, _name, check_size
from .image_rules import _CHANNELS, _SHAPES, image_array, standardize_image
from .mask_rules import MAX_LABELS, MaskResize, as_label_map, binary_from_255, prepare_mask

__all__ = ["as_batch", "prepare_pairs", "read_pairs"]


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
    keep_rgb: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(image, mask) pairs at their own sizes: images by :func:`image_array`, masks by
    :func:`as_label_map` and :func:`binary_from_255` over the whole set.

    Returns:
        ``(images, label maps)``: ``(H, W)`` float32 (finite) and ``(H, W)`` int64, pair by pair the same size;
        with ``keep_rgb`` an RGB image stays ``(H, W, 3)`` as stored (see :func:`image_array`).

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
        image = image_array(img, kinds[0], where_i, keep_rgb=keep_rgb)
        labels = as_label_map(msk, where_m, kind=kinds[1], max_labels=max_labels)
        if image.shape[:2] != labels.shape:
            raise ValueError(
                f"{_name(kinds[0], where_i)} is {_hw(image.shape)} pixels but its mask {where_m} is "
                f"{_hw(labels.shape)} pixels: a mask must have its image's size (image size "
                f"{tuple(image.shape[:2])}, mask size {tuple(labels.shape)})"
            )
        arrays.append(image)
        label_maps.append(labels)
    return arrays, binary_from_255(label_maps)
