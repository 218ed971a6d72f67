"""The engine: targets against a support set, to probabilities, in bounded memory.

Two levels, each written once:

* :func:`predict_probabilities`: "split the targets into batches, expand the support set to each
  batch, run the model, sigmoid" (training validation, evaluation and the engine below call it);
* :class:`Engine`: the ensemble / support-chunk / flip loop on top of it, for one model on one
  device: every inferer (:mod:`universeg_plus.inferers`) and so the
  :class:`~universeg_plus.predictor.Predictor` predict through :meth:`Engine.probabilities`.

Memory is bounded by chunking: a support subset larger than ``support_chunk`` is split into
near-equal disjoint chunks whose probability maps are averaged (weighted by chunk size), and
targets are batched so that at most ``max_pairs`` (target, support) pairs go through the network
at once. Chunked results equal support-set ensembling over a partition, not one pass over the
whole set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Engine", "predict_probabilities"]


def _check(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")


@torch.no_grad()
def predict_probabilities(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    *,
    batch_size: int | None = None,
    max_pairs: int | None = None,
    pad_batch: bool = False,
    device: torch.device | str | None = None,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """Foreground probabilities of every target given one support set.

    Args:
        model: The network or any callable with its contract: ``(B, 1, H, W)`` targets,
            ``(B, S, 1, H, W)`` support images and labels -> ``(B, C, H, W)`` logits.
        targets: ``(N, 1, H, W)`` float images in [0, 1].
        support_images: ``(S, 1, H, W)`` float images in [0, 1].
        support_labels: ``(S, 1, H, W)`` float masks in {0, 1}.
        batch_size: Targets per model call.
        max_pairs: Instead of ``batch_size``: at most this many (target, support example) pairs
            per call, i.e. ``max(1, max_pairs // S)`` targets.
        pad_batch: Fill the last batch up to the batch size with copies of its last target (for
            models compiled for one batch size); the copies' outputs are dropped.
        device: Where the model runs (inputs are moved there); ``None``: where the inputs are.
        autocast: Run under ``torch.autocast`` with this dtype (e.g. ``torch.bfloat16``);
            ``None``: no autocast.

    Returns:
        ``(N, C, H, W)`` float32 probabilities in [0, 1], on the CPU.

    Raises:
        TypeError: an input is not a tensor.
        ValueError: wrong shapes, no targets or support examples, or not exactly one of
            ``batch_size`` and ``max_pairs`` (a positive integer).
    """
    _check("targets", targets)
    _check("support_images", support_images)
    _check("support_labels", support_labels)
    if support_images.shape != support_labels.shape:
        raise ValueError(
            f"support_images {tuple(support_images.shape)} and support_labels {tuple(support_labels.shape)} "
            "must have the same shape"
        )
    if targets.shape[-2:] != support_images.shape[-2:]:
        raise ValueError(
            f"targets are {tuple(targets.shape[-2:])} but the support set is {tuple(support_images.shape[-2:])} "
            "(H, W); resize them to one size"
        )
    n, s = targets.shape[0], support_images.shape[0]
    if n == 0 or s == 0:
        raise ValueError(f"need at least one target and one support example, got {n} and {s}")
    if (batch_size is None) == (max_pairs is None):
        raise ValueError("give exactly one of batch_size and max_pairs")
    limit = batch_size if batch_size is not None else max_pairs
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"batch_size / max_pairs must be a positive integer, got {limit!r}")
    b = batch_size if batch_size is not None else max(1, max_pairs // s)
    dev = torch.device(device) if device is not None else targets.device
    return _batches(model, targets, support_images, support_labels, b, pad_batch, dev, autocast)


def _batches(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    b: int,
    pad_batch: bool,
    dev: torch.device,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """The batch loop of :func:`predict_probabilities`, on checked inputs: ``(N, C, H, W)`` on the CPU."""
    n = targets.shape[0]
    sup_i = support_images.to(dev)[None]
    sup_l = support_labels.to(dev)[None]
    amp = torch.autocast(dev.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    out = []
    for i in range(0, n, b):
        x = targets[i : i + b].to(dev)
        k = x.shape[0]
        if pad_batch and k < b:
            x = torch.cat([x, x[-1:].expand(b - k, *x.shape[1:])])
        m = x.shape[0]
        with amp:
            logits = model(x, sup_i.expand(m, *sup_i.shape[1:]), sup_l.expand(m, *sup_l.shape[1:]))
        out.append(torch.sigmoid(logits[:k].float()).cpu())
    return torch.cat(out)


@dataclasses.dataclass(frozen=True)
class Engine:
    """One model on one device, with the memory bounds and the shapes a compiled model fixes.

    Attributes:
        model: The network (or a compiled model) with the model contract.
        device: Where it runs.
        support_chunk: Largest support subset sent through the network at once.
        max_pairs: Upper bound on ``batch * support`` per forward pass.
        fixed_support: A compiled model's fixed support size (chunks are exactly that size), else ``None``.
        fixed_batch: A compiled model's fixed batch size (the last batch is padded), else ``None``.
    """

    model: Any
    device: torch.device
    support_chunk: int = 64
    max_pairs: int = 64
    fixed_support: int | None = None
    fixed_batch: int | None = None

    def with_model(self, model: Any) -> Engine:
        """The same engine around another model (e.g. a copy adapted to the support set)."""
        return self if model is self.model else dataclasses.replace(self, model=model)

    def chunks(self, idx: Sequence[int]) -> list[list[int]]:
        """``idx`` split into the support chunks sent through the network together."""
        if self.fixed_support:
            step = self.fixed_support
            return [list(idx[i : i + step]) for i in range(0, len(idx), step)]
        parts = math.ceil(len(idx) / self.support_chunk)
        return [c.tolist() for c in np.array_split(np.asarray(idx), parts)]

    @torch.inference_mode()
    def probabilities(
        self,
        targets: torch.Tensor,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        subsets: Sequence[Sequence[int]] | None = None,
        flips: bool = False,
    ) -> torch.Tensor:
        """Mean foreground probability over support subsets, their chunks and (optionally) flips.

        Args:
            targets: ``(N, 1, h, w)`` float in [0, 1], ``(h, w)`` the model's input size.
            support_images: ``(S, 1, h, w)`` float in [0, 1].
            support_labels: ``(S, 1, h, w)`` float in {0, 1} (one class).
            subsets: Lists of indices into the support set whose predictions are averaged (each
                weighted by its size); ``None``: the whole set once.
            flips: Also run the horizontally, vertically and doubly flipped inputs, flipped back.

        Returns:
            ``(N, h, w)`` float32 in [0, 1], on the CPU.
        """
        if subsets is None:
            subsets = [list(range(support_images.shape[0]))]
        views = [()] + ([(-1,), (-2,), (-2, -1)] if flips else [])
        total = torch.zeros(targets.shape[0], *targets.shape[-2:])
        weight = 0.0
        for idx in subsets:
            for chunk in self.chunks(idx):
                si, sl = support_images[chunk], support_labels[chunk]
                b = self.fixed_batch or max(1, self.max_pairs // len(chunk))
                for dims in views:
                    x, fi, fl = (targets.flip(dims), si.flip(dims), sl.flip(dims)) if dims else (targets, si, sl)
                    p = _batches(self.model, x, fi, fl, b, bool(self.fixed_batch), self.device)[:, 0]
                    total += (p.flip(dims) if dims else p) * len(chunk)
                    weight += len(chunk)
        return total / weight
