"""Tiled inference, kept for code written before the Predictor took inferers (deprecated).

Use the Predictor with the :class:`~universeg_plus.inferers.Tiles` inferer instead::

    predictor = Predictor(model, inferer=Tiles(scale=1.0, overlap=0.5)).set_support(images, masks)
    probs = predictor.predict(image).probabilities
    fused = predictor.predict(image, inferer=Tiles(fusion="mean")).probabilities

:class:`TiledSegmenter` is that, and nothing more: it holds a Tiles inferer and the engine and
predicts through them (same numbers as before, ``tests/test_pipeline_reference.py``). The window
geometry lives in :mod:`universeg_plus.windows` and is re-exported here.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .devices import resolve_device
from .inference import Engine
from .inferers import Resize, SupportData, Tiles
from .io.inputs import as_label_map, describe, image_array, read_pairs
from .options import PredictOptions
from .support import SupportSet
from .windows import (
    FUSION_RULES,
    NORMALIZATIONS,
    FusionRule,
    Normalization,
    View,
    blend_windows,
    check_choice,
    check_positive_int,
    fuse,
    gaussian_weights,
    scaled_size,
    window_grid,
    window_starts,
)

__all__ = [
    "FUSION_RULES",
    "NORMALIZATIONS",
    "TiledSegmenter",
    "View",
    "blend_windows",
    "fuse",
    "gaussian_weights",
    "scaled_size",
    "window_grid",
    "window_starts",
]


class TiledSegmenter:
    """Deprecated: ``Predictor(model, inferer=Tiles(...))`` does this (any non-zero label is foreground here).

    Args:
        model: A network or compiled model taking any number of support examples.
        scale, overlap, windows_per_support, fg_fraction, normalize, sigma, seed: See
            :class:`~universeg_plus.inferers.Tiles`.
        max_pairs, support_chunk, device: See :class:`~universeg_plus.predictor.Predictor`.
        progress: Ignored (kept for old call sites).
    """

    def __init__(
        self,
        model: nn.Module | Any,
        scale: float = 1.0,
        overlap: float = 0.5,
        windows_per_support: int = 4,
        fg_fraction: float = 0.5,
        normalize: Normalization = "window",
        sigma: float = 0.125,
        seed: int = 0,
        max_pairs: int = 64,
        support_chunk: int = 64,
        device: str | torch.device | None = None,
        progress: bool = False,
    ) -> None:
        warnings.warn(
            "TiledSegmenter is deprecated: use Predictor(model, inferer=Tiles(...)).set_support(images, masks)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.tiles = Tiles(scale, overlap, windows_per_support, None, fg_fraction, normalize, sigma, seed)
        size = getattr(model, "image_size", None) or model.config.input_size
        self.window = (int(size[0]), int(size[1]))
        dev = resolve_device(device)
        if isinstance(model, nn.Module):
            param = next(model.parameters(), None)
            dev = dev or (param.device if param is not None else torch.device("cpu"))
            model = model.to(dev).eval()
        self.engine = Engine(
            model, dev or torch.device("cpu"), check_positive_int("support_chunk", support_chunk),
            check_positive_int("max_pairs", max_pairs), getattr(model, "support_size", None),
            getattr(model, "batch_size", None),
        )
        self._support: SupportData | None = None

    def set_support(self, images: Sequence[Any], masks: Sequence[Any]) -> TiledSegmenter:
        """Native-size examples (any sizes); any non-zero mask value is foreground."""
        images, masks = list(images), list(masks)
        fg = [(as_label_map(m, f"support mask #{i} ({describe(m)})") != 0).astype(np.int64) for i, m in enumerate(masks)]
        arrays, labels = read_pairs(images, fg, max_labels=None)
        examples = SupportSet.from_arrays(arrays, labels, size=self.window, max_labels=None)
        self._support = SupportData(examples, tuple(zip(arrays, labels)))
        return self

    def _predict(self, target: Any, inferer: Tiles | Resize) -> np.ndarray:
        if self._support is None:
            raise RuntimeError("no support set: call tiler.set_support(images, masks) before predict()")
        options = PredictOptions()
        plan = inferer.check(self._support, options, self.engine)
        prepared = inferer.prepare(self._support, 1, self.window)
        image = image_array(target, "target", describe(target))
        return inferer.probabilities([image], prepared, plan, self.engine, options)[0]

    def predict(self, target: Any) -> np.ndarray:
        """Tiled foreground probabilities ``(H, W)`` float32 in [0, 1] of one image."""
        return self._predict(target, self.tiles)

    def predict_global(self, target: Any) -> np.ndarray:
        """The whole image at the model input size, probabilities ``(H, W)`` float32."""
        return self._predict(target, Resize())

    def predict_multiscale(self, target: Any, fusion: FusionRule = "mean") -> np.ndarray:
        """The global view and the tiled view fused (``"mean"`` or ``"max"``)."""
        check_choice("fusion", fusion, FUSION_RULES)
        return self._predict(target, dataclasses.replace(self.tiles, fusion=fusion))
