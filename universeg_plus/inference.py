"""One batched model call: targets against one support set, in batches, to probabilities.

Training validation, evaluation and the :class:`~universeg_plus.predictor.Predictor` all run
"split the targets into batches, expand the support set to each batch, run the model, sigmoid";
this is that loop, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

__all__ = ["predict_probabilities"]


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
