"""The per-task U-Net: trained from scratch on one support set, fixed budget.

A user-facing method (``Predictor.predict(..., method="unet")``, :mod:`universeg_plus.methods`) and
the supervised baseline of the evaluation, what UniverSeg is compared against (Butoi et al., 2023,
Sec. 5): for each task and support set, a fresh network is trained on just those S labelled pairs,
with simple augmentation, and then segments the same targets. The budget is fixed (:class:`BaselineConfig`), so every (task, S) gets
the same compute.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from .cpu_threads import ThreadGovernor
from .nn.unet import UNet
from .data.augment import Augmentation, Compose, RandomAffine, RandomBrightnessContrast, RandomFlip, RandomGamma
from .nn.loss import DiceBCELoss

__all__ = ["BaselineConfig", "predict_baseline", "train_baseline"]


class BaselineConfig(BaseModel):
    """Fixed training budget of the per-task U-Net.

    Attributes:
        steps: Adam steps.
        batch_size: Pairs per step, drawn with replacement from the support set and augmented.
        lr: Adam learning rate (constant).
        weight_decay: Adam L2 weight decay.
        width: U-Net channels at the first level.
        depth: U-Net levels.
        augment: Random affine (+-15 deg, scale 0.9-1.1, shift 5%), flips/90-degree rotation,
            brightness/contrast and gamma, each entry independently.
        threads: CPU threads for the steps (``None``: chosen by timing, as for adaptation,
            :class:`~universeg_plus.cpu_threads.ThreadGovernor`; an integer fixes the count).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(300, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    width: int = Field(8, ge=1)
    depth: int = Field(4, ge=1)
    augment: bool = True
    threads: int | None = Field(None, ge=1)


def _augmentation() -> Compose:
    return Compose(
        [
            RandomAffine(0.8, "entry", degrees=15.0, scale=(0.9, 1.1), translate=0.05),
            RandomFlip(0.25, "entry"),
            RandomBrightnessContrast(0.5, "entry"),
            RandomGamma(0.3, "entry", gamma=(0.7, 1.5)),
        ]
    )


_GEOMETRIC = (RandomAffine, RandomFlip)


def _augment(
    transforms: list[Augmentation], x: torch.Tensor, y: torch.Tensor, prior: torch.Tensor | None, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each transform on ``x, y (B, 1, 1, H, W)``; the geometric ones move ``prior`` (same shape) alike."""
    for t in transforms:
        params = t.draw(x, g)
        x, y = t.apply(x, y, params)
        if prior is not None and isinstance(t, _GEOMETRIC):
            prior = t.apply(prior, y, params)[0]
    return x, y, prior


def _check_pairs(images: torch.Tensor, masks: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(masks, torch.Tensor):
        raise TypeError("images and masks must be torch tensors (S, 1, H, W)")
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] < 1:
        raise ValueError(f"images must have shape (S, 1, H, W) with S >= 1, got {tuple(images.shape)}")
    if masks.shape != images.shape:
        raise ValueError(f"masks {tuple(masks.shape)} must match images {tuple(images.shape)}")


def train_baseline(
    images: torch.Tensor,
    masks: torch.Tensor,
    config: BaselineConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    priors: torch.Tensor | None = None,
    init: UNet | None = None,
) -> UNet:
    """Train a fresh U-Net on one support set (or continue training ``init``).

    Args:
        images: ``(S, 1, H, W)`` float in [0, 1].
        masks: ``(S, 1, H, W)`` float in {0, 1}.
        config: Budget (default :class:`BaselineConfig`).
        seed: Seeds the initialisation, the batches and the augmentation (same seed, same net).
        device: Where to train.
        progress: Show a tqdm bar with the loss.
        priors: Optional ``(S, 1, H, W)`` probability maps in [0, 1] given to the network as a second
            input channel (e.g. UniverSeg's leave-one-out predictions for the support images); the
            geometric augmentations move them with the image. :func:`predict_baseline` then needs
            the targets' priors too.

    Returns:
        The trained network, in eval mode, on ``device``.
    """
    from tqdm.auto import tqdm

    _check_pairs(images, masks)
    if priors is not None and (not isinstance(priors, torch.Tensor) or priors.shape != images.shape):
        raise ValueError(f"priors must be a tensor shaped like images {tuple(images.shape)}")
    cfg = config or BaselineConfig()
    dev = torch.device(device)
    if init is not None:
        if not isinstance(init, UNet) or init.in_channels != (1 if priors is None else 2):
            raise TypeError("init must be a UNet taking the same input channels (1, or 2 with priors)")
        net = init.to(dev)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = UNet(cfg.width, cfg.depth, in_channels=1 if priors is None else 2).to(dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    images, masks = images.to(dev).float(), masks.to(dev).float()
    priors = priors.to(dev).float() if priors is not None else None
    aug = _augmentation() if cfg.augment else Compose([])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = DiceBCELoss()
    net.train()
    governor = ThreadGovernor(cfg.threads, adaptive=dev.type == "cpu" and cfg.threads is None)
    bar = tqdm(governor.steps(cfg.steps), total=cfg.steps, desc="U-Net", disable=not progress, unit="step",
               leave=False)
    for _ in bar:
        idx = torch.randint(len(images), (cfg.batch_size,), generator=g, device=dev)
        p = priors[idx][:, None] if priors is not None else None
        x, y, p = _augment(aug.transforms, images[idx][:, None], masks[idx][:, None], p, g)
        # the flip's transpose leaves channels-last-like strides that send CPU convs down a path ~4x slower
        x, y = (t[:, 0].clone(memory_format=torch.contiguous_format) for t in (x, y))
        if p is not None:
            x = torch.cat([x, p[:, 0]], dim=1).contiguous()
        loss = criterion(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    bar.close()
    return net.eval()


@torch.no_grad()
def predict_baseline(
    net: UNet, targets: torch.Tensor, batch_size: int = 16, priors: torch.Tensor | None = None
) -> torch.Tensor:
    """Foreground probabilities ``(T, 1, H, W)`` in [0, 1] for targets ``(T, 1, H, W)`` (and their
    ``(T, 1, H, W)`` priors for a network trained with priors)."""
    if targets.ndim != 4 or targets.shape[1] != 1:
        raise ValueError(f"targets must have shape (T, 1, H, W), got {tuple(targets.shape)}")
    if (priors is not None) != (net.in_channels == 2) or (priors is not None and priors.shape != targets.shape):
        raise ValueError(
            f"this U-Net takes {net.in_channels} input channel(s): pass priors shaped like the targets "
            "exactly when it was trained with priors"
        )
    x = targets if priors is None else torch.cat([targets, priors], dim=1)
    net.eval()
    dev = next(net.parameters()).device
    out = [torch.sigmoid(net(x[i : i + batch_size].to(dev).float())).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out)
