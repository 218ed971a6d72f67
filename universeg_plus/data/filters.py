"""Batched image ops used by the synthetic generator and the training augmentations.

All functions take ``(N, C, H, W)`` tensors with per-sample parameters of shape ``(N,)``, run on
any device and draw randomness only from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur", "smooth_noise", "dilate", "erode", "boundary"]


def gaussian_blur(
    x: torch.Tensor, sigma: torch.Tensor, max_radius: int = 8, radius: int | None = None
) -> torch.Tensor:
    """Separable Gaussian blur with a different ``sigma`` (pixels) per sample.

    Args:
        x: ``(N, C, H, W)`` float.
        sigma: ``(N,)`` standard deviations; ``<= 0`` leaves the sample unchanged.
        max_radius: Kernel radius cap (the kernel is ``2 * r + 1`` wide, ``r = min(ceil(3 max(sigma)), max_radius)``).
        radius: Fixed kernel radius instead (no device sync to read ``sigma``; use the largest sigma
            you will pass).

    Returns:
        ``(N, C, H, W)``, same dtype.
    """
    n, c, h, w = x.shape
    if radius is None:
        radius = math.ceil(3 * float(sigma.max())) if sigma.numel() else 1
    r = int(min(max_radius, max(1, radius)))
    r = min(r, (min(h, w) - 1) // 2) if min(h, w) > 2 else 0
    if r == 0:
        return x
    t = torch.arange(-r, r + 1, device=x.device, dtype=torch.float32)
    s = sigma.to(device=x.device, dtype=torch.float32).clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(dim=1, keepdim=True)
    identity = torch.zeros_like(k)
    identity[:, r] = 1.0
    k = torch.where((sigma.to(k.device) > 0)[:, None], k, identity).to(x.dtype)
    # groups=N*C convolution: every (sample, channel) plane gets its sample's kernel.
    kk = k.repeat_interleave(c, dim=0)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), kk[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), kk[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def smooth_noise(
    n: int,
    size: tuple[int, int],
    scale: torch.Tensor | float,
    generator: torch.Generator | None = None,
    channels: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Smooth random fields: Gaussian noise on a coarse grid, bicubically upsampled.

    Args:
        n: Number of fields.
        size: ``(H, W)`` output.
        scale: Coarse grid cells along the longer side (scalar; larger = finer detail).
        generator: Source of randomness (its device is used when ``device`` is ``None``).
        channels: Channels per field.
        device: Output device.

    Returns:
        ``(n, channels, H, W)`` float32, roughly zero-mean unit-variance.
    """
    dev = (
        torch.device(device)
        if device is not None
        else (generator.device if generator is not None else torch.device("cpu"))
    )
    g = max(2, int(round(float(scale))))
    h, w = size
    gh = max(2, round(g * h / max(h, w)))
    gw = max(2, round(g * w / max(h, w)))
    coarse = torch.randn(n, channels, gh, gw, generator=generator, device=dev)
    out = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    return out / out.flatten(1).std(dim=1).clamp_min(1e-6)[:, None, None, None]


def dilate(
    mask: torch.Tensor, iterations: torch.Tensor | int = 1, max_iterations: int | None = None
) -> torch.Tensor:
    """Binary dilation with a 3x3 square, ``iterations`` per sample (``(N,)`` or int; 0 = none).

    Args:
        mask: ``(N, 1, H, W)`` in {0, 1}.
        iterations: Steps per sample.
        max_iterations: Upper bound of ``iterations`` if known (avoids a device sync).
    """
    return _morph(mask, iterations, True, max_iterations)


def erode(
    mask: torch.Tensor, iterations: torch.Tensor | int = 1, max_iterations: int | None = None
) -> torch.Tensor:
    """Binary erosion with a 3x3 square, ``iterations`` per sample; see :func:`dilate`."""
    return _morph(mask, iterations, False, max_iterations)


def _morph(
    mask: torch.Tensor, iterations: torch.Tensor | int, dilate: bool, max_iterations: int | None
) -> torch.Tensor:
    n = mask.shape[0]
    it = torch.as_tensor(iterations, device=mask.device)
    it = it.expand(n) if it.ndim == 0 else it
    if max_iterations is None:
        max_iterations = int(it.max()) if it.numel() else 0
    out = mask
    for i in range(max_iterations):
        pooled = F.max_pool2d(out, 3, 1, 1) if dilate else -F.max_pool2d(-out, 3, 1, 1)
        out = torch.where((it > i)[:, None, None, None], pooled, out)
    return out


def boundary(mask: torch.Tensor) -> torch.Tensor:
    """Inner boundary of a binary mask: ``mask - erode(mask)``, ``(N, 1, H, W)`` in {0, 1}."""
    return (mask - erode(mask, 1)).clamp_(0, 1)
