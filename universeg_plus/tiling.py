"""Tiled inference at (near) native resolution, for small and thin structures.

The ordinary path (:class:`~universeg_plus.predictor.Predictor`) resizes every image to the model's
input size (128x128), which erases vessels, membranes, nuclei and other structures a few pixels wide.
:class:`TiledSegmenter` instead:

1. resizes the target and every support example by ``scale`` (1.0 = native pixel size, 0.5 = half,
   2.0 = twice) with the image rule of :mod:`universeg_plus.io.inputs` (antialiased bilinear, then
   per-image min-max to [0, 1]; masks: indicator resized with the same filter, > 0.5);
2. cuts the target into overlapping windows of the model input size (``overlap`` = fraction of a
   window shared with its neighbour; the windows are spread evenly so the last one ends at the border);
3. takes up to ``windows_per_support`` windows from each support example at the same scale, a
   ``fg_fraction`` share of them containing foreground and the rest from the windows without
   (seeded; topped up from the other kind when one runs out);
4. segments every target window against that one set of support windows;
5. blends the window probabilities with Gaussian weights (sigma = ``sigma`` x window size, centre
   weight 1) into a map at the scaled size, resized back (bilinear) to the target's native size.

An image smaller than a window (after scaling) is padded with zeros (and empty mask) on its bottom
and right; the padding is cropped from the output.

``normalize="window"`` (default) min-max scales every window on its own (a constant window becomes
zeros), so each window spans [0, 1] as every training image did; ``"image"`` min-max scales the
whole resized image, as the ordinary path does. The default was chosen by measurement
(``docs/tiling.md``: equal on EM membranes and H&E nuclei, +0.10 Dice on fluorescence nuclei).

:meth:`TiledSegmenter.predict_global` is the ordinary single 128x128 view of the same support set,
and :func:`fuse` combines views (``"mean"`` or ``"max"`` of probabilities);
:meth:`TiledSegmenter.predict_multiscale` fuses the global view with the tiled one(s).

Memory is bounded as in the Predictor: support windows are split into chunks of at most
``support_chunk`` whose probabilities are averaged (weighted by chunk size), and target windows are
batched so that at most ``max_pairs`` (window, support window) pairs go through the network at once.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import metrics
from .io.inputs import (
    as_image_2d,
    as_label_map,
    check_size,
    describe,
    normalize_image,
    probabilities_to_size,
    resize_indicators,
    standardize_image,
    to_array,
)

__all__ = [
    "FUSION_RULES",
    "NORMALIZATIONS",
    "TiledSegmenter",
    "View",
    "blend_windows",
    "choose_view",
    "fuse",
    "gaussian_weights",
    "scaled_size",
    "window_grid",
    "window_starts",
]

log = logging.getLogger(__name__)

Normalization = Literal["image", "window"]
FusionRule = Literal["mean", "max"]
NORMALIZATIONS: tuple[str, ...] = ("image", "window")
FUSION_RULES: tuple[str, ...] = ("mean", "max")
MAX_SCALE = 8.0


# ---------------------------------------------------------------------- argument checks
def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number in (0, {MAX_SCALE}], got {scale!r}")
    if not 0.0 < float(scale) <= MAX_SCALE:
        raise ValueError(
            f"scale must be in (0, {MAX_SCALE}] (1.0 = native pixel size, 0.5 = downsample by 2), got {scale}"
        )
    return float(scale)


def _check_overlap(overlap: float) -> float:
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be a fraction of the window in [0, 1), got {overlap!r}")
    return float(overlap)


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


# ---------------------------------------------------------------------- geometry
def scaled_size(size: Sequence[int], scale: float) -> tuple[int, int]:
    """``(H, W)`` multiplied by ``scale`` and rounded (at least 1 pixel per side)."""
    h, w = check_size(size)
    s = _check_scale(scale)
    return max(1, round(h * s)), max(1, round(w * s))


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``window`` pixels covering ``length`` pixels with ``overlap``.

    The stride is at most ``round(window * (1 - overlap))`` (and at least 1); the starts are spread
    evenly from 0 to ``length - window``, so the first window starts at the first pixel and the last
    ends at the last. ``length <= window`` gives ``[0]`` (one window, padded).
    """
    overlap = _check_overlap(overlap)
    if length < 1 or window < 1:
        raise ValueError(f"length and window must be >= 1, got {length} and {window}")
    if length <= window:
        return [0]
    stride = max(1, round(window * (1.0 - overlap)))
    n = math.ceil((length - window) / stride) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def window_grid(size: Sequence[int], window: Sequence[int], overlap: float) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the windows covering an image of ``size`` (row-major order)."""
    h, w = check_size(size)
    wh, ww = check_size(window)
    return [(y, x) for y in window_starts(h, wh, overlap) for x in window_starts(w, ww, overlap)]


def gaussian_weights(window: Sequence[int], sigma: float = 0.125) -> torch.Tensor:
    """Blending weights ``(h, w)`` float32: a Gaussian of std ``sigma * side`` centred on the window.

    The centre weight is 1; weights are floored at 1e-3 so that every pixel of a window counts.
    """
    wh, ww = check_size(window)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not float(sigma) > 0:
        raise ValueError(f"sigma must be a positive fraction of the window size, got {sigma!r}")

    def axis(n: int) -> torch.Tensor:
        c = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        return torch.exp(-0.5 * (c / (sigma * n)) ** 2)

    g = axis(wh)[:, None] * axis(ww)[None, :]
    return (g / g.max()).clamp_(min=1e-3).float()


def blend_windows(
    windows: torch.Tensor, corners: Sequence[tuple[int, int]], size: Sequence[int], sigma: float = 0.125
) -> torch.Tensor:
    """Blend window maps into one image map with Gaussian weights.

    Args:
        windows: ``(N, h, w)`` float values (e.g. probabilities), one per corner.
        corners: ``N`` top-left corners ``(y, x)``; windows may reach past ``size`` (padding), that
            part is dropped.
        size: ``(H, W)`` of the output.
        sigma: See :func:`gaussian_weights`.

    Returns:
        ``(H, W)`` float32: per pixel, the weighted mean of the windows covering it.

    Raises:
        ValueError: count mismatch, or a pixel no window covers.
    """
    h, w = check_size(size)
    if windows.ndim != 3 or windows.shape[0] != len(corners):
        raise ValueError(
            f"windows must have shape (N, h, w) with N = {len(corners)} corners, got {tuple(windows.shape)}"
        )
    wh, ww = windows.shape[-2:]
    weight = gaussian_weights((wh, ww), sigma)
    canvas_h = max(h, max((y + wh for y, _ in corners), default=h))
    canvas_w = max(w, max((x + ww for _, x in corners), default=w))
    total = torch.zeros(canvas_h, canvas_w)
    norm = torch.zeros(canvas_h, canvas_w)
    for win, (y, x) in zip(windows.float().cpu(), corners):
        total[y : y + wh, x : x + ww] += win * weight
        norm[y : y + wh, x : x + ww] += weight
    total, norm = total[:h, :w], norm[:h, :w]
    if not bool((norm > 0).all()):
        raise ValueError("the windows do not cover the whole image")
    return total / norm


def fuse(maps: Sequence[np.ndarray | torch.Tensor], rule: FusionRule = "mean") -> np.ndarray:
    """Fuse probability maps of one image (e.g. the global and the tiled view).

    Args:
        maps: Two or more ``(H, W)`` maps in [0, 1] of the same shape.
        rule: ``"mean"`` (average) or ``"max"`` (pixelwise maximum).

    Returns:
        ``(H, W)`` float32 in [0, 1].
    """
    _check_choice("fusion rule", rule, FUSION_RULES)
    arrays = [np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=np.float32) for m in maps]
    if len(arrays) < 2:
        raise ValueError(f"fuse needs at least 2 maps, got {len(arrays)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"maps must all be (H, W) of one shape, got {[a.shape for a in arrays]}")
    stack = np.stack(arrays)
    out = stack.mean(0) if rule == "mean" else stack.max(0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------- inputs
def _image_2d(x: Any, where: str) -> torch.Tensor:
    a = as_image_2d(to_array(x, "image"), "image", where).astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"image {where} contains NaN or inf values")
    return torch.from_numpy(np.ascontiguousarray(a))


def _foreground_2d(x: Any, where: str) -> torch.Tensor:
    return torch.from_numpy(as_label_map(x, where) != 0)


def _pad_to(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad ``(..., H, W)`` on the bottom/right up to at least ``size``."""
    ph, pw = max(0, size[0] - t.shape[-2]), max(0, size[1] - t.shape[-1])
    return F.pad(t, (0, pw, 0, ph)) if ph or pw else t


def _place(model: Any, device: str | torch.device | None) -> tuple[torch.device, Any]:
    """The device to run on (given, else the module's, else CPU) and the model there in eval mode."""
    if not isinstance(model, nn.Module):
        return torch.device(device or "cpu"), model
    param = next(model.parameters(), None)
    dev = torch.device(device) if device is not None else param.device if param is not None else torch.device("cpu")
    return dev, model.to(dev).eval()


def _model_window(model: Any) -> tuple[int, int]:
    size = getattr(model, "image_size", None) or model.config.input_size
    return int(size[0]), int(size[1])


class TiledSegmenter:
    """Segment images at native (or any) resolution from native-size support examples.

    ::

        tiler = TiledSegmenter(model, scale=1.0, overlap=0.5, windows_per_support=4)
        tiler.set_support(support_images, support_masks)   # native-size arrays, binary masks
        probs = tiler.predict(image)                       # (H, W) float32 in [0, 1]
        fused = tiler.predict_multiscale(image, fusion="mean")

    Args:
        model: A network following the model contract (``(B, 1, h, w)``, ``(B, S, 1, h, w)`` x2 ->
            logits ``(B, 1, h, w)``) with an input size ``(h, w)`` (``config.input_size``), e.g. a
            :class:`~universeg_plus.model.UniverSegPlus`; the window size is that input size.
        scale: Resize factor applied to target and support before windowing, in (0, 8]:
            1.0 = native pixel size, 0.5 = downsample by 2.
        overlap: Fraction of a window shared with its neighbour, in [0, 1).
        windows_per_support: At most this many windows per support example (fewer when the
            example has fewer distinct windows at a 3/4 overlap grid).
        fg_fraction: Share of each example's windows that contain foreground, in [0, 1].
        normalize: ``"window"`` (min-max of each window) or ``"image"`` (of the whole resized image).
        sigma: Gaussian blending std as a fraction of the window size.
        seed: Seeds the choice of support windows.
        max_pairs: Upper bound on ``windows * support windows`` per forward pass.
        support_chunk: Largest number of support windows sent through the network at once.
        device: Torch device (default: the model's, else CPU).
        progress: Show a tqdm bar over window batches.

    Raises:
        ValueError: an option out of range (the message names it and the valid range).
        TypeError: ``model`` is not a model.
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
        if not callable(model) or not (hasattr(model, "config") or hasattr(model, "image_size")):
            raise TypeError(
                f"model must be a UniverSegPlus-like module or a compiled model, got {type(model).__name__}"
            )
        if getattr(model, "support_size", None):
            raise ValueError(
                f"tiled mode needs a model that takes any number of support examples; this compiled model "
                f"takes exactly {model.support_size} (compile with a symbolic support size)"
            )
        self.scale = _check_scale(scale)
        self.overlap = _check_overlap(overlap)
        self.windows_per_support = _check_positive_int("windows_per_support", windows_per_support)
        self.fg_fraction = _check_fraction("fg_fraction", fg_fraction)
        self.normalize = _check_choice("normalize", normalize, NORMALIZATIONS)
        gaussian_weights((2, 2), sigma)  # validates sigma
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.max_pairs = _check_positive_int("max_pairs", max_pairs)
        self.support_chunk = _check_positive_int("support_chunk", support_chunk)
        self.progress = bool(progress)
        self.device, self.model = _place(model, device)
        self.window = _model_window(model)
        self._fixed_b: int | None = getattr(model, "batch_size", None)
        self._support: tuple[torch.Tensor, torch.Tensor] | None = None
        self._global: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ support
    def set_support(self, images: Sequence[Any], masks: Sequence[Any]) -> TiledSegmenter:
        """Cut the support windows (and the global 128x128 view) from native-size examples.

        Args:
            images: ``S`` images of any sizes (arrays ``(H, W)``/``(H, W, 3)``, tensors, PIL images,
                paths).
            masks: ``S`` masks of the same sizes; non-zero = foreground.

        Returns:
            ``self``.

        Raises:
            ValueError: empty or mismatched lists, an image and its mask of different sizes, bad values.
        """
        images, masks = list(images), list(masks)
        if not images:
            raise ValueError("the support set is empty: need at least one (image, mask) pair")
        if len(images) != len(masks):
            raise ValueError(f"got {len(images)} support images but {len(masks)} masks")
        gen = torch.Generator().manual_seed(self.seed)
        win_imgs, win_masks, glob_imgs, glob_masks = [], [], [], []
        for i, (x, m) in enumerate(zip(images, masks)):
            img = _image_2d(x, f"support #{i} ({describe(x)})")
            fg = _foreground_2d(m, f"support mask #{i} ({describe(m)})")
            if tuple(img.shape) != tuple(fg.shape):
                raise ValueError(f"support #{i}: image is {tuple(img.shape)} but its mask is {tuple(fg.shape)}")
            glob_imgs.append(standardize_image(img, self.window))
            glob_masks.append(resize_indicators(fg[None], self.window)[0])
            size = scaled_size(img.shape, self.scale)
            s_img = _pad_to(standardize_image(img, size), self.window)
            s_fg = _pad_to(resize_indicators(fg[None], size)[0], self.window)
            for y, x0 in self._support_corners(s_fg, gen):
                win_imgs.append(self._window_image(s_img[y : y + self.window[0], x0 : x0 + self.window[1]]))
                win_masks.append(s_fg[y : y + self.window[0], x0 : x0 + self.window[1]])
        self._support = (torch.stack(win_imgs)[:, None], torch.stack(win_masks)[:, None].float())
        self._global = (torch.stack(glob_imgs)[:, None], torch.stack(glob_masks)[:, None].float())
        if not bool(self._support[1].any()):
            log.warning(
                "the support masks hold no foreground at scale %s: predictions will be (nearly) empty", self.scale
            )
        return self

    def _support_corners(self, fg: torch.Tensor, gen: torch.Generator) -> list[tuple[int, int]]:
        """Windows of one support example: ``fg_fraction`` with foreground, the rest without."""
        wh, ww = self.window
        candidates = window_grid(fg.shape, self.window, 0.75)
        has_fg = [bool(fg[y : y + wh, x : x + ww].any()) for y, x in candidates]
        with_fg = [c for c, f in zip(candidates, has_fg) if f]
        without = [c for c, f in zip(candidates, has_fg) if not f]
        with_fg = [with_fg[i] for i in torch.randperm(len(with_fg), generator=gen).tolist()]
        without = [without[i] for i in torch.randperm(len(without), generator=gen).tolist()]
        k = min(self.windows_per_support, len(candidates))
        n_fg = min(len(with_fg), round(k * self.fg_fraction))
        n_bg = min(len(without), k - n_fg)
        n_fg = min(len(with_fg), k - n_bg)  # top up from the windows with foreground
        return with_fg[:n_fg] + without[:n_bg]

    def _window_image(self, win: torch.Tensor) -> torch.Tensor:
        return normalize_image(win) if self.normalize == "window" else win

    @property
    def support_windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The support windows: images ``(K, 1, h, w)`` in [0, 1] and masks ``(K, 1, h, w)`` in {0, 1}."""
        if self._support is None:
            raise RuntimeError("no support set: call tiler.set_support(images, masks) before predict()")
        return self._support

    # ------------------------------------------------------------------ prediction
    def predict(self, target: Any) -> np.ndarray:
        """Tiled foreground probabilities of one image.

        Args:
            target: ``(H, W)``/``(H, W, 3)`` array, tensor, PIL image or path, any size.

        Returns:
            ``(H, W)`` float32 in [0, 1] at the target's native size.

        Raises:
            RuntimeError: :meth:`set_support` was not called.
        """
        s_img, s_lab = self.support_windows
        img = _image_2d(target, describe(target))
        native = tuple(img.shape)
        size = scaled_size(native, self.scale)
        x = _pad_to(standardize_image(img, size), self.window)
        corners = window_grid(x.shape, self.window, self.overlap)
        wh, ww = self.window
        wins = torch.stack([self._window_image(x[y : y + wh, x0 : x0 + ww]) for y, x0 in corners])[:, None]
        probs = self._forward(wins, s_img, s_lab)
        return probabilities_to_size(blend_windows(probs, corners, size, self.sigma)[None], native)[0]

    def predict_global(self, target: Any) -> np.ndarray:
        """The ordinary view: the whole image at the model input size, upsampled to ``(H, W)`` float32."""
        if self._global is None:
            raise RuntimeError("no support set: call tiler.set_support(images, masks) before predict()")
        img = _image_2d(target, describe(target))
        x = standardize_image(img, self.window)[None, None]
        return probabilities_to_size(self._forward(x, *self._global), img.shape)[0]

    def predict_multiscale(self, target: Any, fusion: FusionRule = "mean") -> np.ndarray:
        """The global view and the tiled view fused with :func:`fuse` (``"mean"`` or ``"max"``)."""
        _check_choice("fusion", fusion, FUSION_RULES)
        return fuse([self.predict_global(target), self.predict(target)], fusion)

    def predict_view(self, target: Any, view: View) -> np.ndarray:
        """Probabilities ``(H, W)`` float32 of one :class:`View` (its scale must be this segmenter's)."""
        if view.scale is None:
            return self.predict_global(target)
        if view.scale != self.scale:
            raise ValueError(f"view {view.name} needs a segmenter at scale {view.scale}, this one is at {self.scale}")
        return self.predict(target) if view.fusion is None else self.predict_multiscale(target, view.fusion)

    def predict_file(
        self,
        path: str | os.PathLike,
        out_path: str | os.PathLike,
        threshold: float = 0.5,
        fusion: FusionRule | None = None,
        probabilities_path: str | os.PathLike | None = None,
    ) -> np.ndarray:
        """Segment a 2D image file and write its binary label map (0/1) atomically.

        Args:
            path: A 2D image file (PNG/JPEG/TIFF/BMP/NPY/NIfTI with one slice).
            out_path: ``.png``/``.npy`` (or ``.nii``/``.nii.gz`` for a NIfTI input, keeping its affine).
            threshold: Foreground probability cut-off in (0, 1).
            fusion: ``None`` (tiled view only), ``"mean"`` or ``"max"`` (fused with the global view).
            probabilities_path: Also write the probabilities there (``.npy``, float32).

        Returns:
            The ``(H, W)`` uint8 mask written.

        Raises:
            FileNotFoundError / ValueError: missing or unreadable file, a volume (tiled mode is 2D),
                an output suffix that does not fit, bad options. Nothing is written then.
        """
        from .io.images import write_labels, write_npy
        from .io.inputs import read_input

        if isinstance(threshold, bool) or not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        if fusion is not None:
            _check_choice("fusion", fusion, FUSION_RULES)
        src = read_input(path)
        if src.is_volume:
            raise ValueError(f"tiled mode segments 2D images; {src.name} is a volume {src.data.shape}")
        if not Path(out_path).name.lower().endswith(src.output_suffixes):
            raise ValueError(f"cannot write the mask of {src.name} to {Path(out_path).name}: use {src.output_suffixes}")
        if probabilities_path is not None and not str(probabilities_path).lower().endswith(".npy"):
            raise ValueError(f"probabilities_path must end in .npy, got {probabilities_path}")
        target = src.data
        probs = self.predict(target) if fusion is None else self.predict_multiscale(target, fusion)
        mask = (probs > float(threshold)).astype(np.uint8)
        write_labels(out_path, mask, src.nifti)
        if probabilities_path is not None:
            write_npy(probabilities_path, probs)
        return mask

    # ------------------------------------------------------------------ internals
    @torch.inference_mode()
    def _forward(self, x: torch.Tensor, s_img: torch.Tensor, s_lab: torch.Tensor) -> torch.Tensor:
        """Mean foreground probability ``(N, h, w)`` of windows ``(N, 1, h, w)`` over support chunks."""
        from tqdm.auto import tqdm

        k, n = s_img.shape[0], x.shape[0]
        chunks = np.array_split(np.arange(k), math.ceil(k / self.support_chunk))
        b = self._fixed_b or max(1, self.max_pairs // len(chunks[0]))
        if n % b and self._fixed_b:  # a model compiled for a fixed batch: pad with copies of the last window
            x = torch.cat([x, x[-1:].expand(b - n % b, *x.shape[1:])])
        total = torch.zeros(x.shape[0], *x.shape[-2:])
        steps = len(chunks) * math.ceil(x.shape[0] / b)
        with tqdm(total=steps, desc="tiles", unit="batch", disable=not self.progress or steps < 2, leave=False) as bar:
            for chunk in chunks:
                si, sl = s_img[chunk].to(self.device), s_lab[chunk].to(self.device)
                for i in range(0, x.shape[0], b):
                    xb = x[i : i + b].to(self.device)
                    logits = self.model(xb, si.expand(len(xb), *si.shape), sl.expand(len(xb), *sl.shape))
                    total[i : i + len(xb)] += torch.sigmoid(logits[:, 0].float()).cpu() * len(chunk)
                    bar.update()
        return total[:n] / k


@dataclass(frozen=True)
class View:
    """One way of segmenting: the global view, the tiled view at ``scale``, or both fused.

    Attributes:
        scale: ``None`` for the global (model input size) view alone, else the tiled scale.
        fusion: With a scale: ``None`` for the tiled view alone, ``"mean"``/``"max"`` to fuse it with
            the global view.
    """

    scale: float | None = None
    fusion: FusionRule | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            _check_scale(self.scale)
        if self.fusion is not None:
            _check_choice("fusion", self.fusion, FUSION_RULES)
            if self.scale is None:
                raise ValueError("a fused view needs a tiled scale")

    @property
    def name(self) -> str:
        """``"global"``, ``"tiled@<scale>"`` or ``"<fusion>@<scale>"``."""
        if self.scale is None:
            return "global"
        return f"{self.fusion or 'tiled'}@{self.scale:g}"


def choose_view(
    model: nn.Module | Any,
    images: Sequence[Any],
    masks: Sequence[Any],
    scales: Sequence[float] = (1.0,),
    fusions: Sequence[str] = FUSION_RULES,
    n_val: int = 4,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = False,
    **tiler_kwargs: Any,
) -> tuple[View, dict[str, float]]:
    """Choose the view by leave-one-out Dice on the support set itself (no target labels).

    ``n_val`` support examples (a seeded draw) are segmented in turn from the other ``S - 1`` with
    every candidate view: the global view, the tiled view at each of ``scales`` and its fusion with
    the global view by each of ``fusions``. The view with the best mean Dice (probability >
    ``threshold``) wins; ties go to the earlier candidate in that order (global first: the cheapest).
    Costs ``n_val`` global predictions and ``n_val * len(scales)`` tiled ones.

    Args:
        model: As :class:`TiledSegmenter`.
        images: ``S >= 2`` native-size support images.
        masks: Their masks (non-zero = foreground).
        scales: Tiled scales to consider.
        fusions: Fusion rules to consider (``()``: tiled views alone).
        n_val: Held-out examples (capped at ``S``).
        threshold: Foreground cut-off of the Dice.
        seed: Seeds the held-out draw and the segmenters' window choice.
        progress: Show a tqdm bar.
        **tiler_kwargs: Other :class:`TiledSegmenter` options (``overlap``, ``windows_per_support``, ...).

    Returns:
        The chosen :class:`View` and the mean Dice of every candidate, by view name.

    Raises:
        ValueError: fewer than 2 examples, bad scales, fusions or ``n_val``.
    """
    from tqdm.auto import tqdm

    images, masks = list(images), list(masks)
    if len(images) < 2 or len(images) != len(masks):
        raise ValueError(
            f"choose_view needs at least 2 support pairs (images and masks alike), got {len(images)} images "
            f"and {len(masks)} masks"
        )
    _check_positive_int("n_val", n_val)
    if not scales:
        raise ValueError("scales must hold at least one scale")
    views = [View()]
    for s in scales:
        views += [View(float(s))] + [View(float(s), f) for f in fusions]
    held_out = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n_val].tolist()
    dices: dict[str, list[float]] = {v.name: [] for v in views}
    with tqdm(total=len(held_out) * len(scales), desc="choose view", disable=not progress, leave=False) as bar:
        for i in held_out:
            rest = [j for j in range(len(images)) if j != i]
            ref = _foreground_2d(masks[i], f"support mask #{i}")
            glob = None
            for s in scales:
                tiler = TiledSegmenter(model, scale=float(s), seed=seed, **tiler_kwargs)
                tiler.set_support([images[j] for j in rest], [masks[j] for j in rest])
                if glob is None:
                    glob = tiler.predict_global(images[i])
                    dices["global"].append(float(metrics.dice(torch.from_numpy(glob) > threshold, ref)))
                tiled = tiler.predict(images[i])
                for v in views:
                    if v.scale == float(s):
                        p = tiled if v.fusion is None else fuse([glob, tiled], v.fusion)
                        dices[v.name].append(float(metrics.dice(torch.from_numpy(p) > threshold, ref)))
                bar.update()
    scores = {name: float(np.mean(d)) for name, d in dices.items()}
    best = max(views, key=lambda v: scores[v.name])  # max keeps the first of equal scores
    return best, scores
