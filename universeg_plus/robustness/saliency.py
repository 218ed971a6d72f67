"""Gradient saliency: how the prediction depends on the target pixels and on each support example.

The score is the mean foreground probability inside a region (by default the predicted mask; the
whole image when it is empty). Its gradient with respect to the inputs gives

* a target map ``|d score / d target|`` (normalised to max 1 per sample), and
* per support example the total gradient magnitude over its image and its mask, normalised to sum to 1
  over the support set: the share of the prediction's sensitivity owed to that example (which
  examples mattered most).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..model import validate_inputs

__all__ = ["Saliency", "compute_saliency", "plot_saliency", "saliency_rmse"]


@dataclass
class Saliency:
    """Gradient saliency of a batch.

    Attributes:
        target: ``(B, H, W)`` float32 in [0, 1], ``|d score / d target|`` over its per-sample max.
        support_images: ``(B, S, H, W)`` float32 ``|d score / d support image|`` (unnormalised).
        support_masks: ``(B, S, H, W)`` float32 ``|d score / d support mask|`` (unnormalised).
        support_importance: ``(B, S)`` float32, each row sums to 1 (uniform when all gradients vanish).
        score: ``(B,)`` the differentiated score (mean foreground probability in the region).
    """

    target: torch.Tensor
    support_images: torch.Tensor
    support_masks: torch.Tensor
    support_importance: torch.Tensor
    score: torch.Tensor


def compute_saliency(
    model: nn.Module,
    target: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    region: torch.Tensor | None = None,
    threshold: float = 0.5,
) -> Saliency:
    """Gradient saliency of ``model``'s prediction.

    Args:
        model: An eager network (a ``torch.nn.Module`` following the model contract).
        target: ``(B, 1, H, W)`` float in [0, 1].
        support_images: ``(B, S, 1, H, W)`` float in [0, 1].
        support_labels: ``(B, S, 1, H, W)`` float in {0, 1}.
        region: ``(B, 1, H, W)`` pixels whose mean probability is the score (default: the predicted
            foreground at ``threshold``; the whole image where it is empty). Pass the clean
            prediction's mask to compare clean and perturbed maps on the same score.
        threshold: Foreground cut-off for the default region.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` (compiled models have no gradients).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"saliency needs an eager torch model (nn.Module), got {type(model).__name__}")
    validate_inputs(target, support_images, support_labels)
    if region is not None and region.shape != target.shape:
        raise ValueError(f"region must have the target's shape {tuple(target.shape)}, got {tuple(region.shape)}")
    inputs = [t.detach().clone().requires_grad_(True) for t in (target, support_images, support_labels)]
    with torch.enable_grad():
        prob = torch.sigmoid(model(*inputs).float())
        if region is None:
            region = (prob.detach() > threshold).float()
        region = region.to(prob)
        empty = region.flatten(1).sum(dim=1) == 0
        region = torch.where(empty.view(-1, 1, 1, 1), torch.ones_like(region), region)
        score = (prob * region).flatten(1).sum(dim=1) / region.flatten(1).sum(dim=1)
        grads = torch.autograd.grad(score.sum(), inputs, allow_unused=True)
    g_t, g_si, g_sl = (torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs))
    t_map = g_t.abs().float()[:, 0]
    t_map = t_map / t_map.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    si_map, sl_map = g_si.abs().float()[:, :, 0], g_sl.abs().float()[:, :, 0]
    total = si_map.flatten(2).sum(dim=2) + sl_map.flatten(2).sum(dim=2)  # (B, S)
    norm = total.sum(dim=1, keepdim=True)
    uniform = torch.full_like(total, 1.0 / total.shape[1])
    importance = torch.where(norm > 0, total / norm.clamp_min(1e-30), uniform)
    return Saliency(t_map, si_map, sl_map, importance, score.detach())


def saliency_rmse(a: Saliency | torch.Tensor, b: Saliency | torch.Tensor) -> torch.Tensor:
    """RMSE between two normalised target maps ``(B, H, W)`` -> ``(B,)`` (0 = same map, at most 1)."""
    ta = a.target if isinstance(a, Saliency) else a
    tb = b.target if isinstance(b, Saliency) else b
    if ta.shape != tb.shape:
        raise ValueError(f"saliency maps differ in shape: {tuple(ta.shape)} and {tuple(tb.shape)}")
    return (ta - tb).pow(2).flatten(1).mean(dim=1).sqrt()


def plot_saliency(
    saliency: Saliency,
    target: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    path: str | os.PathLike,
    index: int = 0,
    top: int = 4,
    title: str = "",
) -> Path:
    """Save a figure: the target with its saliency map, the support examples ranked by importance.

    Args:
        saliency: From :func:`compute_saliency`.
        target, support_images, support_labels: The inputs it was computed on.
        path: Output PNG (written atomically).
        index: Batch entry to show.
        top: Number of most important support examples shown.
        title: Figure title.
    """
    from ..io.figures import pyplot, save_figure

    plt = pyplot()

    imp = saliency.support_importance[index]
    order = torch.argsort(imp, descending=True)[: max(1, min(top, imp.numel()))].tolist()
    ncol = 2 + len(order)
    fig, axes = plt.subplots(2, ncol, figsize=(2.2 * ncol, 4.6))
    axes[0, 0].imshow(target[index, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("target", fontsize=9)
    axes[1, 0].imshow(saliency.target[index].cpu().numpy(), cmap="magma", vmin=0, vmax=1)
    axes[1, 0].set_title("|d score / d target|", fontsize=9)
    bar = axes[0, 1]
    bar.bar(range(imp.numel()), imp.cpu().numpy(), color="tab:blue")
    bar.set_title("support importance", fontsize=9)
    bar.set_xlabel("support example", fontsize=8)
    bar.tick_params(labelsize=7)
    axes[1, 1].axis("off")
    for col, k in enumerate(order, start=2):
        axes[0, col].imshow(support_images[index, k, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, col].contour(support_labels[index, k, 0].detach().cpu().numpy(), levels=[0.5], colors="lime", linewidths=0.8)
        axes[0, col].set_title(f"support {k}: {float(imp[k]):.2f}", fontsize=9)
        axes[1, col].imshow(saliency.support_images[index, k].cpu().numpy(), cmap="magma")
        axes[1, col].set_title("|d score / d image|", fontsize=8)
    for ax in axes.flat:
        if ax is not bar:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
