"""Support-set adaptation: fine-tune a copy of an in-context model on episodes from its support set.

The in-context network already segments a new task from its support set; adaptation then spends a
few dozen gradient steps specialising a *copy* of it to that task, starting from the in-context
prior (the pretrained weights) rather than from scratch as the per-task U-Net does::

    adapted = adapt_model(model, support_images, support_masks, steps=40, lr=1e-4, seed=0)
    logits = adapted(target, support_images[None], support_masks[None])   # full support set again

Episodes come from the support set alone (leave-k-out): each step draws ``batch_size`` episodes,
each a random example as the target and ``episode_support`` other examples as its support, augments
them (per-entry and per-episode transforms from :mod:`universeg_plus.data.augment`) and takes an
Adam step on Dice + BCE (:class:`~universeg_plus.nn.loss.DiceBCELoss`). With a single example
the target is an augmented copy of the support example. The original model is never modified.

For tiled prediction (:class:`~universeg_plus.inferers.Tiles`), :func:`adapt_on_windows` draws the
episodes from windows of the native-size support examples at the tiled scale instead
(:class:`~universeg_plus.windows.WindowEpisodes`), so the copy learns the structures at the width in
pixels it will see them; the rest of the loop is the same::

    episodes = Tiles().episodes(support_data, label=1, window=(128, 128))
    adapted = adapt_on_windows(model, episodes, steps=300, seed=0)

Cost: one step runs the network on ``batch_size * episode_support`` (target, support) pairs forward
and backward; the model's prediction afterwards costs the same as without adaptation.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from .cpu_threads import ThreadGovernor
from .data.augment import (
    Compose,
    RandomAffine,
    RandomBrightnessContrast,
    RandomFlip,
    RandomGamma,
    RandomNoise,
)
from .io.inputs import resize_image, resize_indicators
from .nn.loss import DiceBCELoss
from .windows import WindowEpisodes

__all__ = [
    "PARTS",
    "AdaptConfig",
    "WindowEpisodes",
    "adapt_config",
    "adapt_model",
    "adapt_on_windows",
    "in_context_probabilities",
    "trainable_parameters",
]

log = logging.getLogger(__name__)

Parts = Literal["all", "decoder", "encoder", "last"]

#: Which parameters each ``parts`` choice fine-tunes (by name prefix; ``"last"`` is resolved per model).
PARTS: dict[str, tuple[str, ...]] = {
    "all": ("",),
    "decoder": ("dec_blocks.", "out_conv."),
    "encoder": ("enc_blocks.",),
    "last": (),
}


class AdaptConfig(BaseModel):
    """How a model is adapted to one support set.

    Attributes:
        steps: Adam steps (0: the copy is returned unchanged).
        lr: Peak learning rate (linear warm-up over the first 10% of steps, cosine decay to 0).
        parts: What is fine-tuned: ``"all"``, ``"decoder"`` (decoder blocks and output conv),
            ``"encoder"``, or ``"last"`` (the last decoder block and the output conv).
        batch_size: Episodes (targets) per step.
        episode_support: Support examples per episode (default: all the others, at most 8);
            capped at ``S - 1``.
        augment: Random per-entry affine/brightness-contrast/gamma/noise and per-episode flips.
        weight_decay: Decoupled decay towards zero (AdamW), 0 = plain Adam.
        grad_clip: Global gradient-norm cap (``None``: off).
        size: Resolution ``(H, W)`` the episodes are built at (default: the support's own); lower is
            cheaper, the model is conv-only, and predictions stay at the model's input size.
        crop: Train on random ``crop x crop`` windows, one window position per episode shared by its
            target and support entries (same scale, ``(crop / H) ** 2`` of the cost per step);
            ``None`` (or a crop at least the episode size): whole images.
        threads: CPU threads for the steps. ``None``: chosen by timing each step, up to torch's
            current count (:class:`~universeg_plus.cpu_threads.ThreadGovernor`), so that another
            CPU-bound process does not stall the backward in OpenMP waits; an integer fixes the count
            (bit-for-bit repeatable weights need a fixed count).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(300, ge=0)
    lr: float = Field(1e-3, gt=0)
    parts: Parts = "all"
    batch_size: int = Field(4, ge=1)
    episode_support: int | None = Field(2, ge=1)
    augment: bool = True
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    size: tuple[int, int] | None = None
    crop: int | None = Field(64, ge=1)
    threads: int | None = Field(None, ge=1)

    @field_validator("size")
    @classmethod
    def _size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (len(v) != 2 or min(v) < 1):
            raise ValueError(f"size must be two positive integers (H, W), got {v}")
        return v


def adapt_config(base: AdaptConfig | None = None, **options: object) -> AdaptConfig:
    """``base`` (default :class:`AdaptConfig`) with ``options`` overriding its fields.

    Raises:
        ValueError: an unknown field or a value out of range, every problem on one line.
    """
    data = {**(base or AdaptConfig()).model_dump(), **options}
    try:
        return AdaptConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ValueError(f"invalid adaptation options: {problems}") from None


def _augmentation() -> Compose:
    return Compose(
        [
            RandomAffine(0.5, "entry", degrees=15.0, scale=(0.9, 1.1), translate=0.05),
            RandomBrightnessContrast(0.5, "entry"),
            RandomGamma(0.3, "entry", gamma=(0.7, 1.5)),
            RandomNoise(0.2, "entry", std=(0.0, 0.03)),
            RandomFlip(0.25, "task"),
        ]
    )


def trainable_parameters(model: nn.Module, parts: str) -> list[tuple[str, nn.Parameter]]:
    """The ``(name, parameter)`` pairs that ``parts`` selects in ``model``.

    Raises:
        ValueError: unknown ``parts``, or a choice that selects nothing in this model.
    """
    if parts not in PARTS:
        raise ValueError(f"parts must be one of {sorted(PARTS)}, got {parts!r}")
    named = list(model.named_parameters())
    if parts == "last":
        n_dec = len(getattr(model, "dec_blocks", ()))
        prefixes: tuple[str, ...] = (f"dec_blocks.{n_dec - 1}.", "out_conv.") if n_dec else ("out_conv.",)
    else:
        prefixes = PARTS[parts]
    chosen = [(n, p) for n, p in named if n.startswith(prefixes)]
    if not chosen:
        raise ValueError(f"parts={parts!r} selects no parameter of {type(model).__name__}")
    return chosen


def _check_support(images: torch.Tensor, masks: torch.Tensor, multiple: int) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(masks, torch.Tensor):
        raise TypeError(
            f"support_images and support_masks must be torch tensors (S, 1, H, W), got "
            f"{type(images).__name__} and {type(masks).__name__}"
        )
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] < 1:
        raise ValueError(f"support_images must have shape (S, 1, H, W) with S >= 1, got {tuple(images.shape)}")
    if masks.shape != images.shape:
        raise ValueError(f"support_masks {tuple(masks.shape)} must match support_images {tuple(images.shape)}")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("support_images must be finite and in [0, 1]")
    if not bool(((masks == 0) | (masks == 1)).all()):
        raise ValueError("support_masks must be binary (values in {0, 1})")
    h, w = images.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"support H and W must be divisible by {multiple}, got {(h, w)}")


def _lr_factor(step: int, steps: int) -> float:
    warm = max(1, steps // 10)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def _episode_index(n: int, batch: int, k: int, g: torch.Generator) -> torch.Tensor:
    """``(B, k + 1)`` example numbers per episode: ``k`` distinct support entries, then the target."""
    if n == 1:  # nothing to leave out: the target is (an augmented copy of) the example itself
        return torch.zeros(batch, k + 1, dtype=torch.long)
    return torch.stack([torch.randperm(n, generator=g)[: k + 1].roll(-1) for _ in range(batch)])


def _crop(
    images: torch.Tensor, masks: torch.Tensor, crop: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``crop x crop`` window per episode of ``(B, N, 1, H, W)``, shared by its N entries."""
    h, w = images.shape[-2:]
    ys = torch.randint(0, h - crop + 1, (images.shape[0],), generator=g).tolist()
    xs = torch.randint(0, w - crop + 1, (images.shape[0],), generator=g).tolist()
    cut = [(images[b, ..., y : y + crop, x : x + crop], masks[b, ..., y : y + crop, x : x + crop])
           for b, (y, x) in enumerate(zip(ys, xs))]
    return torch.stack([c[0] for c in cut]), torch.stack([c[1] for c in cut])


def adapt_model(
    model: nn.Module,
    support_images: torch.Tensor,
    support_masks: torch.Tensor,
    config: AdaptConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    **options: object,
) -> nn.Module:
    """Fine-tune a copy of ``model`` on leave-k-out episodes from one support set.

    Args:
        model: An in-context network (``model(target, support_images, support_labels) -> logits``,
            a :class:`~universeg_plus.model.UniverSegPlus`); left unchanged.
        support_images: ``(S, 1, H, W)`` float in [0, 1] (prepared at the model's input size, e.g.
            ``SupportSet.images``).
        support_masks: ``(S, 1, H, W)`` float in {0, 1} (``SupportSet.binary().masks``).
        config: Settings (default :class:`AdaptConfig`); ``options`` override its fields, e.g.
            ``steps=40, lr=1e-4, parts="decoder"``.
        seed: Seeds episodes and augmentation: the same inputs and seed give the same weights.
        progress: Show a tqdm bar with the loss.

    Returns:
        The adapted copy, in eval mode, on the model's device.

    Raises:
        TypeError: ``model`` is not a torch module (e.g. a compiled model), or tensors are not tensors.
        ValueError: bad shapes or values, unknown options or ``parts``.
    """
    _check_module(model)
    cfg = adapt_config(config, **options) if options else config or AdaptConfig()
    multiple = getattr(getattr(model, "config", None), "size_multiple", 1)
    _check_support(support_images, support_masks, multiple)
    if cfg.size is not None and (cfg.size[0] % multiple or cfg.size[1] % multiple):
        raise ValueError(f"size must be divisible by {multiple}, got {cfg.size}")
    hw = tuple(cfg.size) if cfg.size is not None else tuple(support_images.shape[-2:])
    crop = _crop_size(cfg, hw, multiple)

    images = support_images.detach().float()
    masks = support_masks.detach().float()
    if cfg.size is not None and tuple(cfg.size) != tuple(images.shape[-2:]):
        images = resize_image(images, cfg.size)
        masks = resize_indicators(masks[:, 0], cfg.size)[:, None]
    return _fine_tune(model, len(images), lambda idx, g: (images[idx], masks[idx]), cfg, crop, seed, progress)


def adapt_on_windows(
    model: nn.Module,
    episodes: WindowEpisodes,
    config: AdaptConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    **options: object,
) -> nn.Module:
    """Fine-tune a copy of ``model`` on leave-k-out episodes of windows at the tiled mode's scale.

    As :func:`adapt_model`, but each episode entry is a window of the model input size cut from a
    native-size support example at :class:`~universeg_plus.inferers.Tiles`' scale
    (:class:`~universeg_plus.windows.WindowEpisodes`), so thin structures keep the width in pixels
    that tiled prediction shows the network; ``crop`` (default 64) then cuts one shared random
    ``crop x crop`` part of an episode's windows, as :func:`adapt_model` does.

    Args:
        model: An in-context network (a :class:`~universeg_plus.model.UniverSegPlus`); left unchanged.
        episodes: The support examples at their own sizes, with the tiled geometry
            (``Tiles.episodes(...)`` builds them from a Predictor's support set).
        config, seed, progress, options: As :func:`adapt_model` (``size`` is refused: the windows
            fix the scale).

    Returns:
        The adapted copy, in eval mode, on the model's device.

    Raises:
        TypeError: ``model`` is not a torch module, or ``episodes`` not :class:`WindowEpisodes`.
        ValueError: a window or crop the model cannot take, ``size`` set, unknown options.
    """
    _check_module(model)
    if not isinstance(episodes, WindowEpisodes):
        raise TypeError(f"episodes must be WindowEpisodes (native-size support windows), got {type(episodes).__name__}")
    cfg = adapt_config(config, **options) if options else config or AdaptConfig()
    if cfg.size is not None:
        raise ValueError(
            f"size resizes whole support images; window episodes keep the tiled scale (got size={cfg.size})"
        )
    multiple = getattr(getattr(model, "config", None), "size_multiple", 1)
    window = episodes.window
    if window[0] % multiple or window[1] % multiple:
        raise ValueError(f"the window {window} must be divisible by {multiple} (the model input size)")
    crop = _crop_size(cfg, window, multiple)
    return _fine_tune(model, len(episodes), episodes.draw, cfg, crop, seed, progress)


def _check_module(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"adaptation needs a torch module (UniverSegPlus), got {type(model).__name__}; "
            "adapt the eager model, then compile the adapted copy"
        )


def _crop_size(cfg: AdaptConfig, hw: tuple[int, int], multiple: int) -> int | None:
    """The episodes' crop side, ``None`` when the episodes are no larger than it."""
    if cfg.crop is not None and cfg.crop % multiple:
        raise ValueError(f"crop must be divisible by {multiple}, got {cfg.crop}")
    return cfg.crop if cfg.crop is not None and cfg.crop < min(hw) else None  # no smaller than the episode


Draw = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def _fine_tune(
    model: nn.Module, n: int, draw: Draw, cfg: AdaptConfig, crop: int | None, seed: int, progress: bool
) -> nn.Module:
    """The adaptation loop: ``draw(index (B, k + 1), generator)`` gives each step's episodes
    ``(B, k + 1, 1, h, w)`` images and masks of the ``n`` examples (the last entry the target)."""
    from tqdm.auto import tqdm

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    adapted = copy.deepcopy(model).to(device)
    adapted.eval()  # no dropout/batch-norm updates: adaptation changes weights only
    if cfg.steps == 0:
        return adapted
    flags = {name: p.requires_grad for name, p in adapted.named_parameters()}
    chosen = dict(trainable_parameters(adapted, cfg.parts))
    for name, p in adapted.named_parameters():
        p.requires_grad_(name in chosen)

    k = max(1, min(cfg.episode_support or n - 1, n - 1))
    aug = _augmentation() if cfg.augment else Compose([])
    opt = torch.optim.AdamW(list(chosen.values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.steps))
    criterion = DiceBCELoss()
    g = torch.Generator().manual_seed(int(seed))
    g_dev = g if device.type == "cpu" else torch.Generator(device=device).manual_seed(int(seed))
    governor = ThreadGovernor(cfg.threads, adaptive=device.type == "cpu" and cfg.threads is None)
    bar = tqdm(governor.steps(cfg.steps), total=cfg.steps, desc="adapt", disable=not progress, unit="step",
               leave=False)
    loss_v = float("nan")
    for _ in bar:
        ep_i, ep_m = draw(_episode_index(n, cfg.batch_size, k, g), g)
        ep_i, ep_m = aug(ep_i.to(device), ep_m.to(device), g_dev)
        if crop is not None:
            ep_i, ep_m = _crop(ep_i, ep_m, crop, g)
        target, target_mask = ep_i[:, k].contiguous(), ep_m[:, k].contiguous()
        logits = adapted(target, ep_i[:, :k].contiguous(), ep_m[:, :k].contiguous())
        loss = criterion(logits, target_mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(list(chosen.values()), cfg.grad_clip)
        opt.step()
        sched.step()
        loss_v = float(loss.detach())
        bar.set_postfix(loss=f"{loss_v:.4f}")
    bar.close()
    log.info("adapted %s (%s) on %d examples: %d steps, final loss %.4f, threads %s", type(model).__name__, cfg.parts,
             n, cfg.steps, loss_v, governor.choices or governor.candidates)
    for name, p in adapted.named_parameters():
        p.requires_grad_(flags[name])
    return adapted.eval()


@torch.no_grad()
def in_context_probabilities(
    model: nn.Module | Callable[..., torch.Tensor],
    targets: torch.Tensor,
    support_images: torch.Tensor,
    support_masks: torch.Tensor,
    leave_out: bool = False,
    batch_size: int = 4,
) -> torch.Tensor:
    """Foreground probabilities ``(T, 1, H, W)`` of ``model`` for ``targets`` given one support set.

    Args:
        model: In-context network (model contract; a torch module runs on its parameters' device,
            anything else on the CPU).
        targets: ``(T, 1, H, W)`` in [0, 1]; with ``leave_out`` these must be the support images.
        support_images: ``(S, 1, H, W)`` in [0, 1].
        support_masks: ``(S, 1, H, W)`` in {0, 1}.
        leave_out: Target ``i`` is segmented from the support set without example ``i`` (needs S >= 2).
        batch_size: Targets per forward pass.
    """
    param = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    dev = param.device if param is not None else torch.device("cpu")
    s = support_images.shape[0]
    if leave_out and (s < 2 or targets.shape[0] != s):
        raise ValueError(f"leave_out needs the S >= 2 support images as targets, got S={s}, T={targets.shape[0]}")
    out = []
    for i in range(0, targets.shape[0], batch_size):
        rows = range(i, min(i + batch_size, targets.shape[0]))
        if leave_out:
            keep = [torch.tensor([j for j in range(s) if j != r]) for r in rows]
            si = torch.stack([support_images[k] for k in keep])
            sm = torch.stack([support_masks[k] for k in keep])
        else:
            si = support_images[None].expand(len(rows), -1, -1, -1, -1)
            sm = support_masks[None].expand(len(rows), -1, -1, -1, -1)
        logits = model(targets[i : i + len(rows)].to(dev), si.to(dev), sm.to(dev))
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out)
