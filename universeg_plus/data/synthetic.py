"""Synthetic segmentation tasks, generated batched on any device (unlimited new tasks).

A synthetic task is a random smooth label map (the argmax of K smooth random fields, optionally
with random ellipses drawn on top), deformed smoothly per image so that images of one task share
structure but differ; each label gets a random intensity and texture; then a multiplicative bias
field, blur and noise. One label of the map is the task's foreground.

    gen = SyntheticTaskGenerator(size=(128, 128))
    images, masks = gen(num_tasks=8, num_images=17, generator=torch.Generator().manual_seed(0))
    # images (8, 17, 1, 128, 128) float32 in [0, 1]; masks (8, 17, 1, 128, 128) float32 in {0, 1}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .filters import gaussian_blur, smooth_noise
from .task_source import TaskSource

__all__ = ["SyntheticConfig", "SyntheticTaskGenerator"]


class SyntheticConfig(BaseModel):
    """Ranges the generator draws from (``(low, high)``, uniform per task unless stated).

    Attributes:
        num_labels: Labels in the map (integers, inclusive range).
        label_scale: Coarse-grid size of the label fields (higher = more, smaller regions).
        num_ellipses: Random ellipses drawn over the map as extra labels (inclusive range).
        deform: Per-image smooth deformation amplitude, as a fraction of the image side.
        intensity_jitter: Per-image std of each label's intensity.
        texture: Per-label texture amplitude.
        texture_scale: Coarse-grid size of the texture fields.
        bias: Strength of the log bias field.
        blur_sigma: Blur sigma in pixels (per task).
        noise_std: Additive Gaussian noise std (per task).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_labels: tuple[int, int] = (2, 6)
    label_scale: tuple[float, float] = (3.0, 10.0)
    num_ellipses: tuple[int, int] = (0, 3)
    deform: tuple[float, float] = (0.0, 0.04)
    intensity_jitter: float = Field(0.05, ge=0.0)
    texture: tuple[float, float] = (0.0, 0.15)
    texture_scale: tuple[float, float] = (8.0, 40.0)
    bias: tuple[float, float] = (0.0, 0.4)
    blur_sigma: tuple[float, float] = (0.0, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.08)

    @model_validator(mode="after")
    def _check_ranges(self) -> SyntheticConfig:
        for name in type(self).model_fields:
            v = getattr(self, name)
            if isinstance(v, tuple):
                if v[0] > v[1] or v[0] < 0:
                    raise ValueError(f"synthetic.{name} must be a range (low <= high, low >= 0), got {v}")
        if self.num_labels[0] < 2:
            raise ValueError(
                f"synthetic.num_labels must start at >= 2 (background + foreground), got {self.num_labels}"
            )
        return self


def _uniform(n: int, rng: tuple[float, float], g: torch.Generator, device: torch.device) -> torch.Tensor:
    return rng[0] + (rng[1] - rng[0]) * torch.rand(n, generator=g, device=device)


class SyntheticTaskGenerator(TaskSource):
    """Callable generator of synthetic binary tasks; see the module docstring.

    Args:
        size: ``(H, W)`` of the images.
        config: Ranges to draw from (:class:`SyntheticConfig` defaults if ``None``).
    """

    def __init__(self, size: tuple[int, int] = (128, 128), config: SyntheticConfig | None = None) -> None:
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (H, W) with H, W >= 8, got {tuple(size)}")
        self.size = (int(size[0]), int(size[1]))
        self.config = config or SyntheticConfig()

    def _generate(
        self, num_tasks: int, num_images: int, g: torch.Generator, dev: torch.device, hg: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """See :meth:`TaskSource.__call__`; ``hg`` draws the per-call field scales."""
        cfg = self.config
        b, n, (h, w) = num_tasks, num_images, self.size
        bn = b * n
        k_max = cfg.num_labels[1] + cfg.num_ellipses[1]

        # Per-task label fields: K smooth fields; labels beyond the task's K are disabled.
        k = torch.randint(cfg.num_labels[0], cfg.num_labels[1] + 1, (b,), generator=g, device=dev)
        scale = float(_uniform(1, cfg.label_scale, hg, hg.device))
        fields = smooth_noise(b, (h, w), scale, g, channels=cfg.num_labels[1], device=dev)
        off = torch.arange(cfg.num_labels[1], device=dev)[None] >= k[:, None]
        fields = fields.masked_fill(off[:, :, None, None], float("-inf"))
        base = fields.argmax(dim=1, keepdim=True).float()  # (B, 1, H, W)

        # Ellipses as extra labels, drawn in order on top.
        yy, xx = torch.meshgrid(
            torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev), indexing="ij"
        )
        n_ell = torch.randint(cfg.num_ellipses[0], cfg.num_ellipses[1] + 1, (b,), generator=g, device=dev)
        for e in range(cfg.num_ellipses[1]):
            cy, cx = torch.rand(2, b, generator=g, device=dev) * 1.4 - 0.7
            ry, rx = torch.rand(2, b, generator=g, device=dev) * 0.35 + 0.08
            th = torch.rand(b, generator=g, device=dev) * torch.pi
            c, s = torch.cos(th)[:, None, None], torch.sin(th)[:, None, None]
            dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
            u, v = c * dx + s * dy, -s * dx + c * dy
            inside = (u / rx[:, None, None]) ** 2 + (v / ry[:, None, None]) ** 2 <= 1
            inside &= (e < n_ell)[:, None, None]
            base = torch.where(inside[:, None], (cfg.num_labels[1] + e) * torch.ones_like(base), base)

        # Per-image smooth deformation of the shared map (nearest keeps labels discrete).
        amp = _uniform(b, cfg.deform, g, dev).repeat_interleave(n)
        flow = smooth_noise(bn, (h, w), 4, g, channels=2, device=dev) * amp[:, None, None, None] * 2
        grid = torch.stack([xx, yy], dim=-1)[None] + flow.permute(0, 2, 3, 1)
        labels = F.grid_sample(
            base.repeat_interleave(n, dim=0), grid, mode="nearest", padding_mode="border", align_corners=True
        ).long()  # (BN, 1, H, W)

        # Foreground: one label that is present in the task's first image (fallback: label 0).
        present = F.one_hot(labels.view(b, n, -1)[:, 0], k_max).amax(dim=1).float()  # (B, K)
        fg = torch.multinomial(present + 1e-6 * (present.sum(1, keepdim=True) == 0), 1, generator=g)[:, 0]
        masks = (labels == fg.repeat_interleave(n)[:, None, None, None]).float()

        # Intensities: per-task label means, per-image jitter, per-label texture.
        mu = torch.rand(b, 1, k_max, generator=g, device=dev)
        mu = (mu + cfg.intensity_jitter * torch.randn(b, n, k_max, generator=g, device=dev)).view(bn, k_max)
        img = mu.gather(1, labels.view(bn, -1)).view(bn, 1, h, w)
        tex_amp = (
            (_uniform(b * k_max, cfg.texture, g, dev).view(b, 1, k_max)).expand(b, n, k_max).reshape(bn, k_max)
        )
        tex = smooth_noise(bn, (h, w), float(_uniform(1, cfg.texture_scale, hg, hg.device)), g, device=dev)
        img = img + tex_amp.gather(1, labels.view(bn, -1)).view(bn, 1, h, w) * tex

        # Bias field, blur, noise (task-level strengths).
        bias = _uniform(b, cfg.bias, g, dev).repeat_interleave(n)
        img = img * torch.exp(bias[:, None, None, None] * smooth_noise(bn, (h, w), 3, g, device=dev))
        sigma = _uniform(b, cfg.blur_sigma, g, dev).repeat_interleave(n)
        img = gaussian_blur(img, sigma, radius=math.ceil(3 * cfg.blur_sigma[1]))
        std = _uniform(b, cfg.noise_std, g, dev).repeat_interleave(n)
        img = img + std[:, None, None, None] * torch.randn(bn, 1, h, w, generator=g, device=dev)

        lo = img.amin(dim=(1, 2, 3), keepdim=True)
        hi = img.amax(dim=(1, 2, 3), keepdim=True)
        img = ((img - lo) / (hi - lo).clamp_min(1e-6)).clamp_(0, 1)
        return img.view(b, n, 1, h, w), masks.view(b, n, 1, h, w)
