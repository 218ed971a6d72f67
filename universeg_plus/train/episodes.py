"""Episode sampling: B tasks per step, a support set of size S and disjoint targets from each.

All real pairs live in two device tensors (concatenated over tasks), so sampling a batch is a few
batched tensor ops with no per-episode Python loop; synthetic episodes come from the generator
on the same device.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from ..data.synthetic import SyntheticTaskGenerator
from ..data.tasks import TaskCollection

__all__ = ["Episodes", "EpisodeSampler", "ValEpisodes", "make_val_episodes"]

log = logging.getLogger(__name__)


@dataclass
class Episodes:
    """A batch of episodes; entries ``[:S]`` are the support, ``[S:]`` the targets.

    Attributes:
        images: ``(B, S + T, 1, H, W)`` float in [0, 1].
        masks: ``(B, S + T, 1, H, W)`` float in {0, 1}.
        support_size: S.
        task_ids: ``(B,)`` index of the real task, ``-1`` for synthetic, ``-2`` for superpixel episodes.
    """

    images: torch.Tensor
    masks: torch.Tensor
    support_size: int
    task_ids: torch.Tensor

    def split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model inputs with one target per row: ``target (BT, 1, H, W)``, ``target_mask (BT, 1, H, W)``,
        ``support_images (BT, S, 1, H, W)``, ``support_labels (BT, S, 1, H, W)``."""
        s = self.support_size
        b, n = self.images.shape[:2]
        t = n - s
        target = self.images[:, s:].reshape(b * t, *self.images.shape[2:])
        target_mask = self.masks[:, s:].reshape(b * t, *self.masks.shape[2:])
        sup_i, sup_m = self.images[:, :s], self.masks[:, :s]
        if t > 1:
            sup_i, sup_m = sup_i.repeat_interleave(t, dim=0), sup_m.repeat_interleave(t, dim=0)
        return target, target_mask, sup_i, sup_m


class EpisodeSampler:
    """Draws :class:`Episodes` from real tasks and/or the synthetic generator.

    Args:
        tasks: Real training tasks (``None`` or empty: synthetic only). Tasks are sampled by dataset
            first (uniformly), then uniformly within the dataset, so a dataset with many labels does
            not dominate.
        size: ``(H, W)`` of the episodes (real tasks must already be at this size).
        synthetic: Generator for synthetic tasks, or ``None``.
        synthetic_prob: Probability that an episode is synthetic.
        superpixel: Source of superpixel pseudo-tasks
            (:class:`~universeg_plus.data.superpixels.SuperpixelTaskSource`), or ``None``.
        superpixel_prob: Probability that an episode is a superpixel pseudo-task.
        batch_size: Episodes per call.
        s_range: ``(s_min, s_max)``: S is drawn from it once per call.
        s_distribution: ``"uniform"`` over the integers of ``s_range``, or ``"log_uniform"``
            (uniform in log S, rounded).
        num_targets: Targets per episode, disjoint from the support.
        device: Where the pairs are kept and episodes produced.
    """

    def __init__(
        self,
        tasks: TaskCollection | None,
        size: tuple[int, int],
        synthetic: SyntheticTaskGenerator | None = None,
        synthetic_prob: float = 0.5,
        superpixel=None,
        superpixel_prob: float = 0.0,
        batch_size: int = 8,
        s_range: tuple[int, int] = (1, 64),
        num_targets: int = 1,
        device: torch.device | str = "cpu",
        s_distribution: str = "uniform",
    ) -> None:
        if s_distribution not in ("uniform", "log_uniform"):
            raise ValueError(f"s_distribution must be 'uniform' or 'log_uniform', got {s_distribution!r}")
        self.s_distribution = s_distribution
        if s_range[0] < 1 or s_range[0] > s_range[1]:
            raise ValueError(f"s_range must be (s_min, s_max) with 1 <= s_min <= s_max, got {s_range}")
        if num_targets < 1 or batch_size < 1:
            raise ValueError(f"batch_size and num_targets must be >= 1, got {batch_size}, {num_targets}")
        self.size = tuple(size)
        self.device = torch.device(device)
        self.batch_size, self.s_range, self.num_targets = batch_size, tuple(s_range), num_targets
        self.synthetic, self.superpixel = synthetic, superpixel
        kept = []
        for t in tasks or []:
            if t.size != self.size:
                raise ValueError(f"task {t.name} is stored at {t.size}, expected {self.size}")
            if len(t) < num_targets + 1:
                log.warning("task %s has %d pairs (< num_targets + 1), not sampled", t.name, len(t))
                continue
            kept.append(t)
        self.task_names = [t.name for t in kept]
        self.dataset_names = [t.dataset for t in kept]
        p_syn = 0.0 if synthetic is None else float(synthetic_prob)
        p_sp = 0.0 if superpixel is None else float(superpixel_prob)
        if p_syn + p_sp > 1 + 1e-9:
            raise ValueError(f"synthetic_prob + superpixel_prob must be <= 1, got {p_syn} + {p_sp}")
        if not kept:
            if synthetic is None and superpixel is None:
                raise ValueError(
                    "no tasks to sample from: give real tasks, a synthetic generator or a superpixel source"
                )
            # without real tasks the other sources share every episode
            total = p_syn + p_sp
            p_syn, p_sp = (p_syn / total, p_sp / total) if total > 0 else ((1.0, 0.0) if synthetic else (0.0, 1.0))
        self.synthetic_prob, self.superpixel_prob = p_syn, p_sp
        if kept:
            self.images = torch.cat([t.images for t in kept]).to(self.device, torch.float32)
            self.masks = torch.cat([t.masks for t in kept]).to(self.device, torch.uint8)
            counts = torch.tensor([len(t) for t in kept])
            self.counts = counts.to(self.device)
            self.offsets = (torch.cumsum(counts, 0) - counts).to(self.device)
            datasets = sorted(set(self.dataset_names))
            per_ds = {d: self.dataset_names.count(d) for d in datasets}
            w = torch.tensor([1.0 / (len(datasets) * per_ds[d]) for d in self.dataset_names])
            self.task_weights = w.to(self.device)
            self.max_count = int(counts.max())

    @property
    def num_tasks(self) -> int:
        """Number of real tasks sampled from."""
        return len(self.task_names)

    def sample(self, generator: torch.Generator, host_generator: torch.Generator | None = None) -> Episodes:
        """One batch of ``batch_size`` episodes with a freshly drawn S.

        Args:
            generator: Randomness on the sampler's device.
            host_generator: CPU generator for the per-batch scalars (S, number of synthetic
                episodes), so a CUDA ``generator`` needs no device sync; defaults to ``generator``.
        """
        g, dev = generator, self.device
        hg = host_generator if host_generator is not None else g
        s = self._draw_support_size(hg)
        u = torch.rand(self.batch_size, generator=hg, device=hg.device)
        n_syn = int((u < self.synthetic_prob).sum())
        n_sp = int(((u >= self.synthetic_prob) & (u < self.synthetic_prob + self.superpixel_prob)).sum())
        parts_i, parts_m, ids = [], [], []
        n_real = self.batch_size - n_syn - n_sp
        if n_real:
            img, msk, tid = self._sample_real(n_real, s, g)
            parts_i.append(img), parts_m.append(msk), ids.append(tid)
        if n_syn:
            img, msk = self.synthetic(n_syn, s + self.num_targets, generator=g, device=dev, host_generator=hg)
            parts_i.append(img), parts_m.append(msk), ids.append(torch.full((n_syn,), -1, device=dev))
        if n_sp:
            img, msk = self.superpixel(n_sp, s + self.num_targets, generator=g, device=dev)
            parts_i.append(img), parts_m.append(msk), ids.append(torch.full((n_sp,), -2, device=dev))
        return Episodes(torch.cat(parts_i), torch.cat(parts_m), s, torch.cat(ids))

    def _draw_support_size(self, hg: torch.Generator) -> int:
        lo, hi = self.s_range
        if self.s_distribution == "uniform":
            return int(torch.randint(lo, hi + 1, (1,), generator=hg, device=hg.device))
        # floor of a log-uniform draw on [lo, hi + 1): S = k has probability log((k + 1) / k) / log((hi + 1) / lo)
        u = float(torch.rand((), generator=hg, device=hg.device))
        a, b = math.log(lo), math.log(hi + 1)
        return min(hi, max(lo, math.floor(math.exp(a + u * (b - a)))))

    def _sample_real(self, b: int, s: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dev, t = self.device, self.num_targets
        task = torch.multinomial(self.task_weights, b, replacement=True, generator=g)
        n = self.counts[task]  # (b,)
        # A random permutation of each task's indices: random keys, invalid slots pushed to the end.
        keys = torch.rand(b, self.max_count, generator=g, device=dev)
        col = torch.arange(self.max_count, device=dev)
        keys = torch.where(col[None] < n[:, None], keys, torch.full_like(keys, 2.0))
        perm = keys.argsort(dim=1)
        # Targets: the first T; support: the next S, or S draws with replacement from the rest.
        avail = (n - t)[:, None]
        j = torch.arange(s, device=dev)[None]
        u = torch.rand(b, s, generator=g, device=dev)
        pos = torch.where(s <= avail, t + j, t + (u * avail).long().clamp_max(avail - 1))
        local = torch.cat([perm.gather(1, pos), perm[:, :t]], dim=1)  # (b, S + T): support first
        idx = self.offsets[task][:, None] + local
        return self.images[idx], self.masks[idx].float(), task


@dataclass
class ValEpisodes:
    """Fixed validation episodes for one task: one support set and several targets."""

    name: str
    support_images: torch.Tensor  # (S, 1, H, W)
    support_masks: torch.Tensor  # (S, 1, H, W)
    targets: torch.Tensor  # (T, 1, H, W)
    target_masks: torch.Tensor  # (T, 1, H, W)


def make_val_episodes(
    tasks: TaskCollection,
    support_size: int = 16,
    targets_per_task: int = 4,
    seed: int = 0,
    max_tasks: int | None = None,
) -> list[ValEpisodes]:
    """Fixed, seeded episodes for quick validation (same on every device and every run).

    Targets are drawn first (at most ``len(task) - 1``); the support comes from the remaining
    pairs, without replacement when there are enough, else with replacement.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for task in list(tasks)[: max_tasks or None]:
        n = len(task)
        if n < 2:
            continue
        perm = torch.randperm(n, generator=g)
        t = min(targets_per_task, n - 1)
        rest = perm[t:]
        if support_size <= len(rest):
            sup = rest[:support_size]
        else:
            sup = rest[torch.randint(len(rest), (support_size,), generator=g)]
        out.append(
            ValEpisodes(
                task.name,
                task.images[sup].cpu(),
                task.masks[sup].cpu(),
                task.images[perm[:t]].cpu(),
                task.masks[perm[:t]].cpu(),
            )
        )
    return out
