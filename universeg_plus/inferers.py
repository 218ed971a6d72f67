"""Inferers: how an image is covered by the model's fixed input size (MONAI's inferer pattern).

The :class:`~universeg_plus.predictor.Predictor` reads the inputs, checks the options once
(:class:`~universeg_plus.options.PredictOptions`) and hands the images to an inferer, which brings
them to the model's input size, calls the engine (:meth:`universeg_plus.inference.Engine.probabilities`)
and brings the probabilities back to each image's own size:

* :class:`Resize` (default): the whole image resized to the input size, one view.
* :class:`Tiles`: overlapping windows at (near) native resolution, support windows cut from the
  native-size examples (:mod:`universeg_plus.windows`), optionally fused with the whole-image view.
* :class:`Slices`: a volume cut into 2D slices along an axis, each covered by a 2D inferer.

Writing another one: subclass :class:`Inferer` as a frozen dataclass (its fields are its validated
options; being hashable lets the Predictor cache :meth:`Inferer.prepare` per support set) and
implement :meth:`~Inferer.prepare` (the support tensors for one label, cached until the next
``set_support``) and :meth:`~Inferer.probabilities` (images in, one ``(H, W)`` map per image out).
An inferer also says what adaptation trains on (:meth:`~Inferer.adapt`, ``Predictor.adapt``): whole
images at the model size by default, the windows it predicts at for :class:`Tiles`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .inference import Engine
from .io.inputs import as_count, probabilities_to_size, resize_indicators, standardize_image
from .options import PredictOptions
from .support import SupportSet
from .windows import (
    FUSION_RULES,
    NORMALIZATIONS,
    FusionRule,
    Normalization,
    blend_windows,
    check_choice,
    check_fraction,
    check_overlap,
    check_positive_int,
    check_scale,
    fuse,
    gaussian_weights,
    WindowEpisodes,
    support_windows,
    target_windows,
)

__all__ = ["Inferer", "Resize", "Slices", "SupportData", "Tiles"]


@dataclass(frozen=True)
class SupportData:
    """The support set as the inferers see it.

    Attributes:
        examples: The :class:`~universeg_plus.support.SupportSet` at the model input size.
        native: The examples at their own sizes, when they were given as images (``(image (H, W)``
            float32, ``labels (H, W)`` int64) pairs), else ``None``; :class:`Tiles` needs them.
    """

    examples: SupportSet
    native: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None

    @property
    def classes(self) -> list[int]:
        """The labels predicted one-vs-rest (``[1]`` for a set without foreground)."""
        return self.examples.classes or [1]


class Inferer(abc.ABC):
    """How 2D images are covered (subclasses are frozen dataclasses, so hashable and immutable)."""

    def adapt(
        self, model: Any, support: SupportData, label: int, window: tuple[int, int], config: Any, seed: int,
        progress: bool,
    ) -> Any:
        """A copy of ``model`` fine-tuned for foreground ``label`` on episodes as this inferer shows the
        network its inputs; here the support set at the model size (:func:`~universeg_plus.adapt.adapt_model`).

        Args:
            model: The eager network (left unchanged).
            support: The support set.
            label: The foreground label (one-vs-rest).
            window: The model input size ``(h, w)``.
            config: The checked :class:`~universeg_plus.adapt.AdaptConfig`.
            seed, progress: As :func:`~universeg_plus.adapt.adapt_model`.
        """
        from .adapt import adapt_model

        ex = support.examples
        masks = (ex.masks == label).float() if ex.classes else ex.masks
        return adapt_model(model, ex.images, masks, config, seed=seed, progress=progress)

    def check(self, support: SupportData, options: PredictOptions, engine: Engine) -> Any:
        """Check the options against this support set and engine before any forward pass.

        Returns:
            A plan handed to :meth:`probabilities` (for :class:`Resize`: the support subsets).
        """
        return options.subsets(support.examples, engine.fixed_support)

    @abc.abstractmethod
    def prepare(self, support: SupportData, label: int, window: tuple[int, int]) -> Any:
        """The support tensors for foreground ``label`` (cached by the Predictor until ``set_support``)."""

    @abc.abstractmethod
    def probabilities(
        self, images: list[np.ndarray], prepared: Any, plan: Any, engine: Engine, options: PredictOptions
    ) -> list[np.ndarray]:
        """Foreground probabilities of one label.

        Args:
            images: Checked images ``(H, W)`` float32 (finite), any sizes.
            prepared: What :meth:`prepare` returned for the label.
            plan: What :meth:`check` returned.
            engine: The model (for this label: possibly an adapted copy), device and memory bounds.
            options: The checked options.

        Returns:
            One ``(H, W)`` float32 map in [0, 1] per image, at its own size.
        """


@dataclass(frozen=True)
class Resize(Inferer):
    """The whole image resized to the model input size (the image rule), one view; today's default."""

    def prepare(self, support: SupportData, label: int, window: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        ex = support.examples
        return ex.images, (ex.masks == label).float()

    def probabilities(
        self, images: list[np.ndarray], prepared: Any, plan: Any, engine: Engine, options: PredictOptions
    ) -> list[np.ndarray]:
        s_img, s_lab = prepared
        size = tuple(s_img.shape[-2:])
        x = torch.stack([standardize_image(torch.from_numpy(t), size)[None] for t in images])
        probs = engine.probabilities(x, s_img, s_lab, plan, options.flips)
        return [probabilities_to_size(p[None], t.shape[:2])[0] for p, t in zip(probs, images)]


@dataclass(frozen=True)
class Tiles(Inferer):
    """Overlapping windows at (near) native resolution (see :mod:`universeg_plus.windows`).

    Needs the support examples at their own sizes: ``predictor.set_support(images, masks)``.
    Several labels are segmented one-vs-rest, each with its own support windows.

    Args:
        scale: Resize factor applied to target and support before windowing, in (0, 8]:
            1.0 = native pixel size, 0.5 = downsample by 2.
        overlap: Fraction of a window shared with its neighbour, in [0, 1).
        windows_per_support: At most this many windows per support example.
        fusion: ``None`` (the tiled view alone), ``"mean"`` or ``"max"`` (fused with the whole-image view).
        fg_fraction: Share of each example's windows that contain foreground, in [0, 1].
        normalize: ``"window"`` (min-max of each window) or ``"image"`` (of the whole resized image).
        sigma: Gaussian blending std as a fraction of the window size.
        seed: Seeds the choice of support windows.

    Raises:
        ValueError: an option out of range (the message names it and the valid range).
    """

    scale: float = 1.0
    overlap: float = 0.5
    windows_per_support: int = 4
    fusion: FusionRule | None = None
    fg_fraction: float = 0.5
    normalize: Normalization = "window"
    sigma: float = 0.125
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_scale(self.scale))
        object.__setattr__(self, "overlap", check_overlap(self.overlap))
        check_positive_int("windows_per_support", self.windows_per_support)
        if self.fusion is not None:
            check_choice("fusion", self.fusion, FUSION_RULES)
        object.__setattr__(self, "fg_fraction", check_fraction("fg_fraction", self.fg_fraction))
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        gaussian_weights((2, 2), self.sigma)  # validates sigma
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "seed", as_count(self.seed, "seed", 0))

    def check(self, support: SupportData, options: PredictOptions, engine: Engine) -> None:
        if engine.fixed_support:
            raise ValueError(
                f"tiled mode needs a model that takes any number of support examples; this compiled model "
                f"takes exactly {engine.fixed_support} (compile with a symbolic support size)"
            )
        if options.ensemble != 1 or options.support_size is not None:
            raise ValueError(
                "ensemble and support_size apply to the Resize inferer; Tiles uses every support window "
                "(tune windows_per_support instead)"
            )
        _native(support)

    def episodes(self, support: SupportData, label: int, window: tuple[int, int]) -> WindowEpisodes:
        """Adaptation episodes for ``label``: windows of the native-size examples at this inferer's scale,
        normalisation and foreground share (:class:`~universeg_plus.windows.WindowEpisodes`).

        Raises:
            ValueError: the support set was given without its native-size images.
        """
        images, fgs = _native(support, label)
        return WindowEpisodes(images, fgs, window, self.scale, self.fg_fraction, self.normalize)

    def adapt(
        self, model: Any, support: SupportData, label: int, window: tuple[int, int], config: Any, seed: int,
        progress: bool,
    ) -> Any:
        """A copy of ``model`` fine-tuned on the windows this inferer predicts at
        (:func:`~universeg_plus.adapt.adapt_on_windows`, episodes from :meth:`episodes`)."""
        from .adapt import adapt_on_windows

        return adapt_on_windows(model, self.episodes(support, label, window), config, seed=seed, progress=progress)

    def prepare(self, support: SupportData, label: int, window: tuple[int, int]) -> dict[str, torch.Tensor]:
        images, fgs = _native(support, label)
        windows = support_windows(
            images, fgs, window, self.scale, self.windows_per_support, self.fg_fraction, self.normalize, self.seed
        )
        out = {"windows": windows}
        if self.fusion is not None:
            glob_i = torch.stack([standardize_image(img, window) for img in images])[:, None]
            glob_m = torch.stack([resize_indicators(fg[None], window)[0] for fg in fgs])[:, None].float()
            out["global"] = (glob_i, glob_m)
        return out

    def probabilities(
        self, images: list[np.ndarray], prepared: Any, plan: Any, engine: Engine, options: PredictOptions
    ) -> list[np.ndarray]:
        s_img, s_lab = prepared["windows"]
        window = tuple(s_img.shape[-2:])
        out = []
        for a in images:
            img = torch.from_numpy(a)
            wins, corners, size = target_windows(img, window, self.scale, self.overlap, self.normalize)
            probs = engine.probabilities(wins, s_img, s_lab, None, options.flips)
            tiled = probabilities_to_size(blend_windows(probs, corners, size, self.sigma)[None], a.shape)[0]
            if self.fusion is not None:
                x = standardize_image(img, window)[None, None]
                glob = engine.probabilities(x, *prepared["global"], None, options.flips)
                tiled = fuse([probabilities_to_size(glob, a.shape)[0], tiled], self.fusion)
            out.append(tiled)
        return out


def _native(support: SupportData, label: int = 1) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The native-size support images ``(H, W)`` float32 and their ``label`` foregrounds ``(H, W)`` bool.

    Raises:
        ValueError: the support set was given as a prepared SupportSet (no native-size examples).
    """
    if support.native is None:
        raise ValueError(
            "tiled mode needs the support examples at their own sizes: call "
            "predictor.set_support(images, masks) with the images and masks, not a prepared SupportSet"
        )
    native = support.native
    return [torch.from_numpy(img) for img, _ in native], [torch.from_numpy(lab == label) for _, lab in native]


@dataclass(frozen=True)
class Slices:
    """A volume segmented slice by slice along ``axis``, each slice by a 2D inferer.

    Args:
        axis: Slicing axis, 0, 1 or 2.
        inferer: How each slice is covered (default :class:`Resize`).
    """

    axis: int = 2
    inferer: Inferer = Resize()

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", as_count(self.axis, "axis", 0, 2))
        if not isinstance(self.inferer, Inferer):
            raise TypeError(f"Slices(inferer=...) must be a 2D inferer (Resize, Tiles), got {type(self.inferer).__name__}")

    def split(self, volume: np.ndarray) -> np.ndarray:
        """``(X, Y, Z)`` -> ``(D, H, W)`` slices along the axis (a view, no copy)."""
        return np.moveaxis(volume, self.axis, 0)

    def merge(self, per_slice: Sequence[np.ndarray]) -> np.ndarray:
        """``D`` maps ``(H, W)`` or ``(C, H, W)`` -> the volume's layout ``(X, Y, Z)`` / ``(C, X, Y, Z)``."""
        stack = np.stack(per_slice)
        if stack.ndim == 3:
            return np.moveaxis(stack, 0, self.axis)
        return np.moveaxis(np.moveaxis(stack, 1, 0), 1, self.axis + 1)
