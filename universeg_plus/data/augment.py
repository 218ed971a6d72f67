"""Batched episode augmentations (UniverSeg-style), on the training device.

Every transform acts on an episode batch ``images, masks: (B, N, 1, H, W)`` (N = support + targets)
at one of two levels:

* ``level="task"``: one set of random values per episode, applied identically to all its N entries
  (the task changes, the in-context relation between support and target stays consistent);
* ``level="entry"``: independent values per entry (in-task variability).

Randomness is drawn apart from applying it: ``params = t.draw(images, generator)`` then
``t.apply(images, masks, params)``; ``t(images, masks, generator)`` does both. Entries the transform
skips (probability ``1 - p``) get identity parameters, so there is no per-sample Python branching.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from .filters import boundary, dilate, erode, gaussian_blur

__all__ = [
    "Augmentation",
    "Compose",
    "RandomAffine",
    "RandomBoundary",
    "RandomBrightnessContrast",
    "RandomElastic",
    "RandomFlip",
    "RandomGamma",
    "RandomBlur",
    "RandomInvert",
    "RandomLabelSwap",
    "RandomMorphology",
    "RandomNoise",
    "build_augmentations",
]

Level = Literal["task", "entry"]
Params = dict[str, torch.Tensor]


def _check_range(name: str, r: Sequence[float], low: float | None = None) -> tuple[float, float]:
    if len(r) != 2 or r[0] > r[1] or (low is not None and r[0] < low):
        raise ValueError(
            f"{name} must be a (low, high) range with low <= high"
            + (f" and low >= {low}" if low is not None else "")
            + f", got {tuple(r)}"
        )
    return float(r[0]), float(r[1])


def _check_episode(images: torch.Tensor, masks: torch.Tensor) -> None:
    if images.ndim != 5 or images.shape[2] != 1:
        raise ValueError(f"images must be (B, N, 1, H, W), got {tuple(images.shape)}")
    if masks.shape != images.shape:
        raise ValueError(f"masks {tuple(masks.shape)} must match images {tuple(images.shape)}")


class Augmentation:
    """Base class: probability ``p`` per episode (``level="task"``) or per entry (``"entry"``).

    Subclasses implement ``_draw(count, generator, device) -> Params`` (tensors with first dim
    ``count``, including a bool ``"on"``) and ``_apply(images, masks, params)`` on ``(BN, 1, H, W)``.
    """

    def __init__(self, p: float = 0.5, level: Level = "task") -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        if level not in ("task", "entry"):
            raise ValueError(f"{type(self).__name__}: level must be 'task' or 'entry', got {level!r}")
        self.p = float(p)
        self.level = level

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, level={self.level!r})"

    def _on(self, count: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.rand(count, generator=g, device=device) < self.p

    def _draw(self, count: int, g: torch.Generator, device: torch.device) -> Params:
        raise NotImplementedError

    def _apply(
        self, images: torch.Tensor, masks: torch.Tensor, params: Params
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def draw(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        """Random values for an episode batch ``images (B, N, 1, H, W)`` (only its shape and device
        are used): tensors with first dim ``B * N``, equal within an episode for ``level="task"``."""
        b, n = images.shape[:2]
        if self.level == "task":
            return {k: v.repeat_interleave(n, dim=0) for k, v in self._draw(b, generator, images.device).items()}
        return self._draw(b * n, generator, images.device)

    def apply(
        self, images: torch.Tensor, masks: torch.Tensor, params: Params
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply drawn values; ``images, masks (B, N, 1, H, W)`` -> same shapes."""
        _check_episode(images, masks)
        shape = images.shape
        flat = (-1, *shape[2:])
        out_i, out_m = self._apply(images.reshape(flat), masks.reshape(flat), params)
        return out_i.reshape(shape), out_m.reshape(shape)

    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_episode(images, masks)
        return self.apply(images, masks, self.draw(images, generator))


def _where(on: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(on.view(-1, *([1] * (a.ndim - 1))), a, b)


def _resample(images: torch.Tensor, masks: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    img = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    m = F.grid_sample(masks, grid.to(masks.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return img.clamp_(0, 1), (m > 0.5).to(masks.dtype)


class RandomAffine(Augmentation):
    """Rotation (degrees), isotropic scale and translation (fraction of the side)."""

    def __init__(
        self,
        p: float = 0.5,
        level: Level = "task",
        degrees: float = 25.0,
        scale: Sequence[float] = (0.85, 1.15),
        translate: float = 0.1,
    ) -> None:
        super().__init__(p, level)
        if degrees < 0 or translate < 0:
            raise ValueError(f"degrees and translate must be >= 0, got {degrees}, {translate}")
        self.degrees, self.scale, self.translate = (
            float(degrees),
            _check_range("scale", scale, 1e-3),
            float(translate),
        )

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        u = torch.rand(count, 4, generator=g, device=device)
        angle = (u[:, 0] * 2 - 1) * math.radians(self.degrees)
        s = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 1]
        t = (u[:, 2:] * 2 - 1) * self.translate * 2  # normalised coords span 2
        cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
        theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
        eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], device=device).expand(count, 2, 3)
        return {"on": on, "theta": torch.where(on[:, None, None], theta, eye)}

    def _apply(self, images, masks, params):
        grid = F.affine_grid(params["theta"], list(images.shape), align_corners=False)
        img, m = _resample(images, masks, grid)
        return _where(params["on"], img, images), _where(params["on"], m, masks)


class RandomElastic(Augmentation):
    """Smooth random displacement field, amplitude ``alpha`` (fraction of the side)."""

    def __init__(self, p: float = 0.25, level: Level = "task", alpha: float = 0.04, grid: int = 5) -> None:
        super().__init__(p, level)
        if alpha < 0 or grid < 2:
            raise ValueError(f"alpha must be >= 0 and grid >= 2, got {alpha}, {grid}")
        self.alpha, self.grid = float(alpha), int(grid)

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        coarse = torch.randn(count, 2, self.grid, self.grid, generator=g, device=device) * self.alpha * 2
        return {"on": on, "coarse": coarse * on[:, None, None, None]}

    def _apply(self, images, masks, params):
        n, _, h, w = images.shape
        disp = F.interpolate(params["coarse"], size=(h, w), mode="bicubic", align_corners=False)
        base = F.affine_grid(
            torch.eye(2, 3, device=images.device).expand(n, 2, 3), [n, 1, h, w], align_corners=False
        )
        img, m = _resample(images, masks, base + disp.permute(0, 2, 3, 1))
        return _where(params["on"], img, images), _where(params["on"], m, masks)


class RandomFlip(Augmentation):
    """Horizontal flip, vertical flip and 90-degree rotation, each with probability ``p``."""

    def _draw(self, count, g, device):
        u = torch.rand(count, 3, generator=g, device=device) < self.p
        return {"on": u.any(dim=1), "h": u[:, 0], "v": u[:, 1], "rot": u[:, 2]}

    def _apply(self, images, masks, params):
        out = []
        for x in (images, masks):
            x = _where(params["h"], x.flip(-1), x)
            x = _where(params["v"], x.flip(-2), x)
            if x.shape[-1] == x.shape[-2]:
                x = _where(params["rot"], x.transpose(-1, -2), x)
            out.append(x)
        return out[0], out[1]


class RandomInvert(Augmentation):
    """Intensity inversion ``1 - image``."""

    def _draw(self, count, g, device):
        return {"on": self._on(count, g, device)}

    def _apply(self, images, masks, params):
        return _where(params["on"], 1 - images, images), masks


class RandomLabelSwap(Augmentation):
    """Foreground/background swap ``1 - mask``."""

    def _draw(self, count, g, device):
        return {"on": self._on(count, g, device)}

    def _apply(self, images, masks, params):
        return images, _where(params["on"], 1 - masks, masks)


class RandomBoundary(Augmentation):
    """Replace the mask by its boundary (edge label)."""

    def _draw(self, count, g, device):
        return {"on": self._on(count, g, device)}

    def _apply(self, images, masks, params):
        return images, _where(params["on"], boundary(masks), masks)


class RandomMorphology(Augmentation):
    """Dilate or erode the mask by 1..``max_iterations`` 3x3 steps (erosion never empties a mask)."""

    def __init__(self, p: float = 0.2, level: Level = "task", max_iterations: int = 2) -> None:
        super().__init__(p, level)
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
        self.max_iterations = int(max_iterations)

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        it = torch.randint(1, self.max_iterations + 1, (count,), generator=g, device=device) * on
        grow = torch.rand(count, generator=g, device=device) < 0.5
        return {"on": on, "dilate": it * grow, "erode": it * ~grow}

    def _apply(self, images, masks, params):
        m = dilate(masks, params["dilate"], self.max_iterations)
        eroded = erode(m, params["erode"], self.max_iterations)
        keep = eroded.flatten(1).amax(dim=1) > 0
        return images, _where(keep, eroded, m)


class RandomBlur(Augmentation):
    """Gaussian blur of the image, sigma (pixels) in ``sigma``."""

    def __init__(self, p: float = 0.2, level: Level = "task", sigma: Sequence[float] = (0.1, 1.5)) -> None:
        super().__init__(p, level)
        self.sigma = _check_range("sigma", sigma, 0.0)

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        s = self.sigma[0] + (self.sigma[1] - self.sigma[0]) * torch.rand(count, generator=g, device=device)
        return {"on": on, "sigma": s * on}

    def _apply(self, images, masks, params):
        radius = math.ceil(3 * self.sigma[1])
        return gaussian_blur(images, params["sigma"], radius=radius).clamp_(0, 1), masks


class RandomNoise(Augmentation):
    """Additive Gaussian noise, std in ``std`` (one std per episode at task level; the noise
    field itself is always drawn per entry)."""

    def __init__(self, p: float = 0.3, level: Level = "entry", std: Sequence[float] = (0.0, 0.08)) -> None:
        super().__init__(p, level)
        self.std = _check_range("std", std, 0.0)

    def draw(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        b, n, _, h, w = images.shape
        count = b if self.level == "task" else b * n
        dev = images.device
        on = self._on(count, generator, dev)
        std = (self.std[0] + (self.std[1] - self.std[0]) * torch.rand(count, generator=generator, device=dev)) * on
        if self.level == "task":
            on, std = on.repeat_interleave(n), std.repeat_interleave(n)
        noise = torch.randn(b * n, 1, h, w, generator=generator, device=dev)
        return {"on": on, "noise": noise * std[:, None, None, None]}

    def _apply(self, images, masks, params):
        return (images + params["noise"].to(images.dtype)).clamp_(0, 1), masks


class RandomGamma(Augmentation):
    """Gamma ``image ** gamma``, gamma log-uniform in ``gamma``."""

    def __init__(self, p: float = 0.3, level: Level = "task", gamma: Sequence[float] = (0.6, 1.6)) -> None:
        super().__init__(p, level)
        self.gamma = _check_range("gamma", gamma, 1e-3)

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        lo, hi = math.log(self.gamma[0]), math.log(self.gamma[1])
        gam = torch.exp(lo + (hi - lo) * torch.rand(count, generator=g, device=device))
        return {"on": on, "gamma": torch.where(on, gam, torch.ones_like(gam))}

    def _apply(self, images, masks, params):
        return images.clamp(1e-6, 1) ** params["gamma"].view(-1, 1, 1, 1), masks


class RandomBrightnessContrast(Augmentation):
    """``(image - mean) * c + mean + b``, c in ``contrast``, b in ``[-brightness, brightness]``."""

    def __init__(
        self,
        p: float = 0.5,
        level: Level = "entry",
        brightness: float = 0.1,
        contrast: Sequence[float] = (0.8, 1.2),
    ) -> None:
        super().__init__(p, level)
        if brightness < 0:
            raise ValueError(f"brightness must be >= 0, got {brightness}")
        self.brightness, self.contrast = float(brightness), _check_range("contrast", contrast, 0.0)

    def _draw(self, count, g, device):
        on = self._on(count, g, device)
        u = torch.rand(count, 2, generator=g, device=device)
        c = self.contrast[0] + (self.contrast[1] - self.contrast[0]) * u[:, 0]
        b = (u[:, 1] * 2 - 1) * self.brightness
        return {"on": on, "c": torch.where(on, c, torch.ones_like(c)), "b": b * on}

    def _apply(self, images, masks, params):
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        out = (images - mean) * params["c"].view(-1, 1, 1, 1) + mean + params["b"].view(-1, 1, 1, 1)
        return out.clamp_(0, 1), masks


class Compose:
    """Apply transforms in order, each drawing from the same generator."""

    def __init__(self, transforms: Sequence[Augmentation]) -> None:
        self.transforms = list(transforms)

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"

    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``images, masks (B, N, 1, H, W)`` -> augmented copies of the same shapes."""
        _check_episode(images, masks)
        for t in self.transforms:
            images, masks = t(images, masks, generator)
        return images, masks


def build_augmentations(cfg) -> Compose:
    """The training pipeline from an :class:`~universeg_plus.train.config.AugmentConfig`:
    in-task (per entry) transforms first, then task-level ones."""
    if not cfg.enabled:
        return Compose([])
    return Compose(
        [
            RandomAffine(
                cfg.in_affine, "entry", cfg.in_affine_degrees, cfg.in_affine_scale, cfg.in_affine_translate
            ),
            RandomElastic(cfg.in_elastic, "entry", cfg.elastic_alpha / 2),
            RandomBrightnessContrast(cfg.in_brightness_contrast, "entry"),
            RandomGamma(cfg.in_gamma, "entry", cfg.gamma),
            RandomBlur(cfg.in_blur, "entry", cfg.blur_sigma),
            RandomNoise(cfg.in_noise, "entry", cfg.noise_std),
            RandomAffine(cfg.task_affine, "task", cfg.affine_degrees, cfg.affine_scale, cfg.affine_translate),
            RandomElastic(cfg.task_elastic, "task", cfg.elastic_alpha),
            RandomFlip(cfg.task_flip, "task"),
            RandomMorphology(cfg.task_morph, "task", cfg.morph_iterations),
            RandomBoundary(cfg.task_boundary, "task"),
            RandomLabelSwap(cfg.task_label_swap, "task"),
            RandomInvert(cfg.task_invert, "task"),
            RandomGamma(cfg.task_gamma, "task", cfg.gamma),
            RandomBlur(cfg.task_blur, "task", cfg.blur_sigma),
            RandomNoise(cfg.task_noise, "task", cfg.noise_std),
        ]
    )
