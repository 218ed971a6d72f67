"""Superpixel pseudo-tasks from unlabelled images (batched torch, any device).

``superpixels`` is a SLIC-style k-means over (intensity, position) run on a whole batch at once.
``SuperpixelTaskSource`` turns a pool of unlabelled images into binary tasks: one image, one of its
superpixels (merged with its neighbours at random) as foreground, repeated N times; the training
pipeline's in-task augmentations then make the N entries differ. It is called like
:class:`~universeg_plus.data.synthetic.SyntheticTaskGenerator`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .task_source import TaskSource

__all__ = ["SuperpixelTaskSource", "load_image_folder", "superpixels"]


def load_image_folder(path, size: tuple[int, int] = (128, 128)) -> torch.Tensor:
    """All images in a folder (PNG/JPEG/TIFF/BMP, grayscale), resized: ``(M, 1, H, W)`` float in [0, 1].

    Raises:
        FileNotFoundError: no such folder.
        ValueError: no images in it, or an unreadable file (named).
    """
    from pathlib import Path

    from ..io.inputs import prepare_image
    from .tasks import _IMAGE_EXTS

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
    if not files:
        raise ValueError(f"no images ({', '.join(_IMAGE_EXTS)}) in {root}")
    return torch.stack([prepare_image(p, tuple(size)) for p in files])


def superpixels(
    images: torch.Tensor, n_segments: int = 16, compactness: float = 0.3, iterations: int = 6
) -> torch.Tensor:
    """Superpixel label maps by k-means on ``(intensity, compactness * y, compactness * x)``.

    Args:
        images: ``(N, 1, H, W)`` float in [0, 1].
        n_segments: Approximate number of superpixels (centres start on a square grid).
        compactness: Weight of position against intensity (coordinates in [0, 1]); higher = more
            regular, grid-like regions.
        iterations: k-means iterations.

    Returns:
        ``(N, H, W)`` long labels in ``[0, K)``, ``K = g * g`` with ``g = round(sqrt(n_segments))``.
    """
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (N, 1, H, W), got {tuple(images.shape)}")
    if n_segments < 1 or iterations < 1 or compactness < 0:
        raise ValueError(
            f"need n_segments >= 1, iterations >= 1, compactness >= 0; got {n_segments}, {iterations}, {compactness}"
        )
    n, _, h, w = images.shape
    dev = images.device
    g = max(1, round(n_segments**0.5))
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, h, device=dev), torch.linspace(0, 1, w, device=dev), indexing="ij"
    )
    feats = torch.cat(
        [images.float(), compactness * yy.expand(n, 1, h, w), compactness * xx.expand(n, 1, h, w)], dim=1
    ).flatten(2)  # (N, 3, HW)
    centres = F.adaptive_avg_pool2d(feats.view(n, 3, h, w), g).flatten(2)  # (N, 3, K)
    for _ in range(iterations):
        d = torch.cdist(feats.transpose(1, 2), centres.transpose(1, 2))  # (N, HW, K)
        assign = d.argmin(dim=2)  # (N, HW)
        onehot = F.one_hot(assign, g * g).to(feats.dtype)  # (N, HW, K)
        counts = onehot.sum(dim=1)  # (N, K)
        sums = torch.bmm(feats, onehot)  # (N, 3, K)
        centres = torch.where(counts[:, None] > 0, sums / counts[:, None].clamp_min(1), centres)
    return assign.view(n, h, w)


class SuperpixelTaskSource(TaskSource):
    """Binary pseudo-tasks from a pool of unlabelled images.

    Args:
        images: ``(M, 1, H, W)`` float in [0, 1] (kept on its device).
        n_segments: Superpixels per image (see :func:`superpixels`).
        merge_prob: Probability that each neighbouring superpixel joins the foreground.
        compactness: See :func:`superpixels`.
    """

    def __init__(
        self, images: torch.Tensor, n_segments: int = 16, merge_prob: float = 0.3, compactness: float = 0.3
    ) -> None:
        if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] < 1:
            raise ValueError(f"images must be a non-empty (M, 1, H, W) tensor, got {tuple(images.shape)}")
        if not 0 <= merge_prob <= 1:
            raise ValueError(f"merge_prob must be in [0, 1], got {merge_prob}")
        self.images = images.float()
        self.n_segments, self.merge_prob, self.compactness = n_segments, merge_prob, compactness

    def _default_generator(self) -> torch.Generator:
        return torch.Generator(device=self.images.device)

    def _generate(
        self, num_tasks: int, num_images: int, g: torch.Generator, dev: torch.device, hg: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every task is one image repeated N times (``hg`` unused: nothing is drawn on the host)."""
        pick = torch.randint(self.images.shape[0], (num_tasks,), generator=g, device=g.device).to(
            self.images.device
        )
        img = self.images[pick].to(dev)  # (B, 1, H, W)
        labels = superpixels(img, self.n_segments, self.compactness)  # (B, H, W)
        k = max(1, round(self.n_segments**0.5)) ** 2
        onehot = F.one_hot(labels, k).permute(0, 3, 1, 2).float()  # (B, K, H, W)
        area = onehot.sum(dim=(2, 3))
        seed = torch.multinomial(area.clamp_min(0) + 1e-6, 1, generator=g)[:, 0]  # larger regions likelier
        fg = onehot[torch.arange(num_tasks, device=dev), seed][:, None]  # (B, 1, H, W)
        # neighbours of the seed region, each joining with merge_prob
        touching = (F.max_pool2d(fg, 3, 1, 1) * onehot).amax(dim=(2, 3)) > 0  # (B, K)
        join = touching & (torch.rand(area.shape, generator=g, device=dev) < self.merge_prob)
        join[torch.arange(num_tasks, device=dev), seed] = True
        mask = (onehot * join[:, :, None, None]).amax(dim=1, keepdim=True)
        shape = (num_tasks, num_images, 1, *img.shape[-2:])
        return img[:, None].expand(shape).contiguous(), mask[:, None].expand(shape).contiguous()
