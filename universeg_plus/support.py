"""Support sets: the labelled examples a model segments from, prepared at the model's input size.

Every image and mask goes through :mod:`universeg_plus.io.inputs` (grayscale, min-max to [0, 1],
antialiased bilinear resize; masks per label with the same filter, largest weight wins), the same
rules training and evaluation use. Masks are binary (bool, {0, 1}, or {0, 255} as in 8-bit PNG
masks, read as {0, 1}) or integer label maps (0 = background, at most ``max_labels`` labels);
``SupportSet.classes`` lists the foreground labels and :meth:`SupportSet.binary` gives the
one-vs-rest set for one. Errors name the example (``support image #3 (path)``, or the name of a
:class:`~universeg_plus.io.inputs.Named` input).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .io.colour_projection import ColourProjection
from .io.images import file_stem, paired_files
from .io.inputs import (
    MAX_LABELS,
    MaskResize,
    Named,
    as_batch,
    as_count,
    check_size,
    prepare_image,
    prepare_mask,
    prepare_pairs,
    read_input,
    to_array,
    volume_array,
)

__all__ = ["MAX_LABELS", "MaskResize", "SupportSet", "preprocess_image", "prepare_mask", "to_array"]

SampleStrategy = Literal["random", "balanced"]
_FORMAT = "universeg_plus.SupportSet"
_FORMAT_VERSION = "1"

#: Kept under its old name: the input rules live in :mod:`universeg_plus.io.inputs`.
preprocess_image = prepare_image


class SupportSet:
    """Labelled examples at the model input size.

    Attributes:
        images: ``(N, 1, H, W)`` float32 in [0, 1].
        masks: ``(N, 1, H, W)`` float32 label values (``{0, 1}`` for a binary set).
        original_sizes: ``(H, W)`` of each example before resizing.
        names: One name per example (file stem, slice name or index).
        classes: Sorted foreground labels present in the masks.
        colour: The :class:`~universeg_plus.io.colour_projection.ColourProjection` that made the
            images grey from RGB (``Predictor.set_support(..., colour=...)``), kept so that targets
            are projected alike (also through :meth:`save`/:meth:`load`); ``None``: the input
            rules' luma.

    Build with :meth:`from_arrays`, :meth:`from_paths`, :meth:`from_folder` or :meth:`from_volume`;
    the constructor takes already-prepared tensors.
    """

    def __init__(
        self,
        images: torch.Tensor,
        masks: torch.Tensor,
        original_sizes: Sequence[Sequence[int]] | None = None,
        names: Sequence[str] | None = None,
        colour: ColourProjection | None = None,
    ) -> None:
        if colour is not None and not isinstance(colour, ColourProjection):
            raise TypeError(f"colour must be a ColourProjection or None, got {type(colour).__name__}")
        if not isinstance(images, torch.Tensor) or not isinstance(masks, torch.Tensor):
            raise TypeError(
                f"images and masks must be torch tensors (N, 1, H, W), got {type(images).__name__} and "
                f"{type(masks).__name__}; use SupportSet.from_arrays for arrays, PIL images or paths"
            )
        if images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}")
        if masks.shape != images.shape:
            raise ValueError(f"masks must have the images' shape {tuple(images.shape)}, got {tuple(masks.shape)}")
        if images.shape[0] == 0:
            raise ValueError("the support set is empty: need at least one (image, mask) pair")
        images = images.detach().float().cpu()
        masks = masks.detach().float().cpu()
        if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError("images must be finite and in [0, 1]; use SupportSet.from_arrays to normalise")
        if not torch.isfinite(masks).all() or (masks != masks.round()).any() or masks.min() < 0:
            raise ValueError("masks must hold non-negative integer label values")
        n = images.shape[0]
        sizes = [tuple(int(v) for v in s) for s in original_sizes] if original_sizes is not None else None
        if sizes is None:
            sizes = [tuple(images.shape[-2:])] * n
        if len(sizes) != n or any(len(s) != 2 for s in sizes):
            raise ValueError(f"original_sizes must hold {n} (H, W) pairs, got {len(sizes)}")
        names = [str(v) for v in names] if names is not None else [str(i) for i in range(n)]
        if len(names) != n:
            raise ValueError(f"names must hold {n} entries, got {len(names)}")
        self.images = images.contiguous()
        self.masks = masks.contiguous()
        self.original_sizes: list[tuple[int, int]] = sizes  # type: ignore[assignment]
        self.names: list[str] = names
        self.classes: list[int] = [int(v) for v in torch.unique(self.masks) if v != 0]
        self.colour: ColourProjection | None = None if colour is None or colour.is_luma else colour

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        images: Sequence[Any] | np.ndarray | torch.Tensor,
        masks: Sequence[Any] | np.ndarray | torch.Tensor,
        size: Sequence[int] = (128, 128),
        mask_resize: MaskResize = "area",
        names: Sequence[str] | None = None,
        *,
        max_labels: int | None = MAX_LABELS,
    ) -> SupportSet:
        """Prepare pairs of images and masks.

        Args:
            images: A list of images (arrays ``(H, W)``/``(H, W, 3)``, tensors, PIL images, paths or
                :class:`~universeg_plus.io.inputs.Named`), or one stacked array/tensor ``(N, H, W)``
                or ``(N, 1, H, W)``.
            masks: The matching masks, same forms (binary or integer label maps).
            size: Model input size ``(H, W)``.
            mask_resize: ``"area"`` (each label's indicator resized, largest weight wins) or ``"nearest"``.
            names: Optional example names (default: file stems for paths and named inputs, else indices).
            max_labels: Most labels one mask may hold (more looks like an image given as a mask);
                ``None``: no limit.

        Raises:
            ValueError: counts differ, empty set, an image and its mask differ in size, NaN/inf,
                masks that are neither binary nor integer label maps, too many labels, 3+D inputs,
                unreadable files. Messages name the example.
        """
        img_list, _ = as_batch(images, "support image", single=False)
        mask_list, _ = as_batch(masks, "support mask", single=False)
        if names is None:
            names = [example_name(x, k) for k, x in enumerate(img_list)]
        prepared, mask_t, sizes = prepare_pairs(img_list, mask_list, size, mask_resize, max_labels=max_labels)
        return cls(prepared, mask_t, sizes, names)

    @classmethod
    def from_paths(
        cls,
        image_paths: Sequence[str | os.PathLike],
        mask_paths: Sequence[str | os.PathLike],
        size: Sequence[int] = (128, 128),
        mask_resize: MaskResize = "area",
        *,
        max_labels: int | None = MAX_LABELS,
    ) -> SupportSet:
        """Read image/mask files (PNG/JPEG/TIFF/BMP/NPY/2D NIfTI) pairwise; see :meth:`from_arrays`."""
        image_paths, mask_paths = list(image_paths), list(mask_paths)
        if len(image_paths) != len(mask_paths):
            raise ValueError(f"got {len(image_paths)} image paths but {len(mask_paths)} mask paths")
        return cls.from_arrays(image_paths, mask_paths, size, mask_resize, max_labels=max_labels)

    @classmethod
    def from_folder(
        cls,
        images_dir: str | os.PathLike,
        masks_dir: str | os.PathLike | None = None,
        size: Sequence[int] = (128, 128),
        mask_resize: MaskResize = "area",
        axis: int = 2,
        max_slices: int | None = 16,
        *,
        max_labels: int | None = MAX_LABELS,
    ) -> SupportSet:
        """Images and masks from two folders matched by file stem.

        Args:
            images_dir: Folder of images, or (with ``masks_dir`` omitted) a folder holding ``images/``
                and ``masks/``.
            masks_dir: Folder of masks with the same stems.
            size: Model input size.
            mask_resize: See :meth:`from_arrays`.
            axis: Slicing axis for 3D volumes (NIfTI or 3D ``.npy``) in the folders.
            max_slices: Foreground slices taken per volume (see :meth:`from_volume`).
            max_labels: See :meth:`from_arrays`.

        Raises:
            FileNotFoundError: a folder is missing.
            ValueError: no files, or stems without a partner (listed).
        """
        if masks_dir is None:
            root = Path(images_dir)
            images_dir, masks_dir = root / "images", root / "masks"
        pairs = paired_files(images_dir, masks_dir)
        parts: list[SupportSet] = []
        flat_i: list[Path] = []
        flat_m: list[Path] = []
        for stem, image_path, mask_path in pairs:
            img = read_input(image_path, "support image")
            if img.is_volume:
                mask = volume_array(mask_path, "support mask")
                parts.append(
                    cls.from_volume(
                        Named(img.data, img.name), Named(mask, mask_path.name), axis=axis, max_slices=max_slices,
                        size=size, mask_resize=mask_resize, name=stem, max_labels=max_labels,
                    )
                )
            else:
                flat_i.append(Named(img.data, str(image_path)))
                flat_m.append(mask_path)
        if flat_i:
            parts.insert(
                0, cls.from_arrays(flat_i, flat_m, size, mask_resize, [file_stem(p.name) for p in flat_i],
                                   max_labels=max_labels)
            )
        return cls.concat(parts)

    @classmethod
    def from_volume(
        cls,
        image: Any,
        labels: Any,
        axis: int = 2,
        max_slices: int | None = 16,
        min_foreground: int = 1,
        size: Sequence[int] = (128, 128),
        mask_resize: MaskResize = "area",
        name: str = "slice",
        *,
        max_labels: int | None = MAX_LABELS,
    ) -> SupportSet:
        """Slices of a labelled 3D volume that contain foreground.

        Args:
            image: ``(X, Y, Z)`` array/tensor or a NIfTI/``.npy`` path.
            labels: Label volume of the same shape (array or path).
            axis: Slicing axis.
            max_slices: Keep at most this many slices, evenly spaced among those with foreground
                (``None``: all of them).
            min_foreground: Minimum foreground pixels for a slice to qualify.
            size: Model input size.
            mask_resize: See :meth:`from_arrays`.
            name: Prefix of the example names (``{name}_{axis}_{index}``).
            max_labels: See :meth:`from_arrays`.

        Raises:
            ValueError: shapes differ, not 3D, or no slice has foreground.
        """
        from .io.nifti import volume_slices

        vol = volume_array(image, "support volume")
        lab = volume_array(labels, "support label volume")
        where = _volume_name(image, name)
        if vol.shape != lab.shape:
            raise ValueError(f"support volume {where} has shape {vol.shape} but its labels have shape {lab.shape}")
        if max_slices is not None:
            as_count(max_slices, "max_slices")
        v_slices = volume_slices(vol, axis)
        l_slices = volume_slices(lab, axis)
        fg = [k for k in range(len(l_slices)) if int(np.count_nonzero(l_slices[k])) >= min_foreground]
        if not fg:
            raise ValueError(f"no slice of {where} along axis {axis} has >= {min_foreground} foreground pixels")
        if max_slices is not None and len(fg) > max_slices:
            picks = np.linspace(0, len(fg) - 1, max_slices).round().astype(int)
            fg = [fg[i] for i in picks]
        names = [f"{name}_{axis % 3}_{k:04d}" for k in fg]
        slice_of = f"of {where} along axis {axis % 3}"
        return cls.from_arrays(
            [Named(v_slices[k], f"slice {k} {slice_of}") for k in fg],
            [Named(l_slices[k], f"slice {k} {slice_of}") for k in fg],
            size, mask_resize, names, max_labels=max_labels,
        )

    @classmethod
    def concat(cls, sets: Sequence[SupportSet]) -> SupportSet:
        """One set holding the examples of several (same size)."""
        sets = list(sets)
        if not sets:
            raise ValueError("the support set is empty: nothing to concatenate")
        shapes = {tuple(s.images.shape[-2:]) for s in sets}
        if len(shapes) > 1:
            raise ValueError(f"support sets to concatenate have different sizes: {sorted(shapes)}")
        colours = {s.colour for s in sets}
        if len(colours) > 1:
            names = sorted("luma" if c is None else c.name for c in colours)
            raise ValueError(
                f"support sets to concatenate were made grey by different colour projections ({', '.join(names)}): "
                "project every example the same way (Predictor.set_support(images, masks, colour=...))"
            )
        return cls(
            torch.cat([s.images for s in sets]),
            torch.cat([s.masks for s in sets]),
            [sz for s in sets for sz in s.original_sizes],
            [n for s in sets for n in s.names],
            colours.pop(),
        )

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        colour = f", colour={self.colour.name!r}" if self.colour is not None else ""
        return f"SupportSet(n={len(self)}, size={self.size}, classes={self.classes}{colour})"

    @property
    def size(self) -> tuple[int, int]:
        """The prepared ``(H, W)``."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    @property
    def is_binary(self) -> bool:
        """True when the masks hold only {0, 1}."""
        return set(self.classes) <= {1}

    def subset(self, indices: Sequence[int] | torch.Tensor) -> SupportSet:
        """The examples at ``indices`` (in that order)."""
        idx = torch.as_tensor(list(indices) if not isinstance(indices, torch.Tensor) else indices, dtype=torch.long)
        if idx.numel() == 0:
            raise ValueError("the support set is empty: no indices selected")
        if idx.min() < -len(self) or idx.max() >= len(self):
            raise IndexError(f"support index out of range for a set of {len(self)}")
        return SupportSet(
            self.images[idx],
            self.masks[idx],
            [self.original_sizes[int(i)] for i in idx],
            [self.names[int(i)] for i in idx],
            self.colour,
        )

    def __getitem__(self, item: int | slice | Sequence[int]) -> SupportSet:
        if isinstance(item, int):
            return self.subset([item])
        if isinstance(item, slice):
            return self.subset(range(len(self))[item])
        return self.subset(item)

    def binary(self, label: int | None = None) -> SupportSet:
        """One-vs-rest set for ``label`` (masks ``{0, 1}``); ``None`` means any foreground.

        Raises:
            ValueError: ``label`` is not one of :attr:`classes`.
        """
        if label is None:
            masks = (self.masks != 0).float()
        else:
            if int(label) not in self.classes:
                raise ValueError(f"label {label} is not in the support set's classes {self.classes}")
            masks = (self.masks == int(label)).float()
        return SupportSet(self.images, masks, self.original_sizes, self.names, self.colour)

    def resized(self, size: Sequence[int]) -> SupportSet:
        """The set resampled to another input size (images bilinear, masks nearest)."""
        size = check_size(size)
        if size == self.size:
            return self
        images = F.interpolate(self.images, size=size, mode="bilinear", align_corners=False, antialias=True)
        masks = F.interpolate(self.masks, size=size, mode="nearest-exact")
        return SupportSet(images.clamp(0, 1), masks, self.original_sizes, self.names, self.colour)

    def with_colour(self, colour: ColourProjection | None) -> SupportSet:
        """The same examples, recorded as made grey by ``colour`` (the images are not changed: give
        the projection they were made with, so that targets are projected alike)."""
        return SupportSet(self.images, self.masks, self.original_sizes, self.names, colour)

    # ------------------------------------------------------------------ sampling
    def sample(self, k: int, strategy: SampleStrategy = "random", seed: int = 0) -> SupportSet:
        """``k`` distinct examples.

        Strategies:
            ``"random"``: uniform without replacement.
            ``"balanced"``: foreground-balanced; classes take turns, each drawing a random unused
            example that contains it, then the rest is filled at random (so examples with
            foreground, and every class, come first).

        Raises:
            ValueError: ``k`` outside ``1..len(self)`` or unknown strategy.
        """
        return self.subset(self._sample_indices(k, strategy, torch.Generator().manual_seed(int(seed))))

    def _sample_indices(self, k: int, strategy: str, gen: torch.Generator) -> list[int]:
        n = len(self)
        k = as_count(k, "k", 1, n, " (the support set size)")
        if strategy == "random":
            return torch.randperm(n, generator=gen)[:k].tolist()
        if strategy != "balanced":
            raise ValueError(f"strategy must be 'random' or 'balanced', got {strategy!r}")
        order = torch.randperm(n, generator=gen).tolist()
        per_class = {c: [i for i in order if bool((self.masks[i] == c).any())] for c in self.classes}
        chosen: list[int] = []
        taken: set[int] = set()
        while len(chosen) < k and any(per_class.values()):
            for c in self.classes:
                pool = per_class[c]
                while pool and pool[0] in taken:
                    pool.pop(0)
                if pool and len(chosen) < k:
                    i = pool.pop(0)
                    chosen.append(i)
                    taken.add(i)
        chosen += [i for i in order if i not in taken][: k - len(chosen)]
        return chosen

    def ensembles(self, n: int, k: int, seed: int = 0, strategy: SampleStrategy = "random") -> Iterator[SupportSet]:
        """``n`` different subsets of size ``k`` (as sets of examples), reproducible from ``seed``.

        Raises:
            ValueError: fewer than ``n`` distinct subsets of size ``k`` exist.
        """
        for idx in self.ensemble_indices(n, k, seed, strategy):
            yield self.subset(idx)

    def ensemble_indices(self, n: int, k: int, seed: int = 0, strategy: SampleStrategy = "random") -> list[list[int]]:
        """The index lists :meth:`ensembles` uses."""
        n = as_count(n, "n", 1, note=" (the number of subsets)")
        k = as_count(k, "k", 1, len(self), " (the support set size)")
        possible = math.comb(len(self), k)
        if n > possible:
            raise ValueError(
                f"only {possible} different subsets of size {k} exist in a support set of {len(self)}; "
                f"asked for {n}: lower the ensemble size or the support size"
            )
        gen = torch.Generator().manual_seed(int(seed))
        seen: set[frozenset[int]] = set()
        out: list[list[int]] = []
        attempts = 0
        while len(out) < n:
            attempts += 1
            idx = self._sample_indices(k, strategy if attempts <= 50 * n else "random", gen)
            key = frozenset(idx)
            if key not in seen:
                seen.add(key)
                out.append(idx)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the prepared set to one ``.safetensors`` file (tensors + JSON metadata), atomically.

        The metadata holds the names, classes, size and the :attr:`colour` projection (when the
        images were projected from RGB), which :meth:`load` restores."""
        from safetensors.torch import save_file

        from .io.atomic import atomic_path

        tensors = {
            "images": self.images,
            "masks": self.masks,
            "original_sizes": torch.tensor(self.original_sizes, dtype=torch.int64),
        }
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "names": json.dumps(self.names),
            "classes": json.dumps(self.classes),
            "size": json.dumps(list(self.size)),
        }
        if self.colour is not None:
            meta["colour"] = json.dumps(self.colour.as_dict())
        dest = Path(path)
        with atomic_path(dest) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return dest

    @classmethod
    def load(cls, path: str | os.PathLike) -> SupportSet:
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: missing file.
            ValueError: not a support-set file (the message names it).
        """
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no such file: {p}")
        try:
            with safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
                if meta.get("format") != _FORMAT:
                    raise ValueError("not a universeg_plus support-set file")
                tensors = {k: fh.get_tensor(k) for k in ("images", "masks", "original_sizes")}
            names = json.loads(meta["names"])
            colour = ColourProjection.from_dict(json.loads(meta["colour"])) if "colour" in meta else None
        except ValueError as exc:
            raise ValueError(f"cannot load support set {p}: {exc}") from exc
        except Exception as exc:  # safetensors raises its own error types on corrupt files
            raise ValueError(f"cannot load support set {p}: {exc}") from exc
        return cls(tensors["images"], tensors["masks"], tensors["original_sizes"].tolist(), names, colour)


def example_name(x: Any, k: int) -> str:
    """The name of example ``k``: a path's or :class:`Named`'s file stem, else its index."""
    if isinstance(x, Named):
        return file_stem(x.name)
    return file_stem(x) if isinstance(x, (str, os.PathLike)) else str(k)


def _volume_name(x: Any, name: str) -> str:
    if isinstance(x, Named):
        return x.name
    return str(x) if isinstance(x, (str, os.PathLike)) else repr(name)
