"""Corrupting the demo's inputs with a registered perturbation (the robustness study's, one at a time)."""

from __future__ import annotations

import numpy as np
import torch

from ..io.inputs import prepare_image
from ..perturb import WHERE, get_perturbation, list_perturbations
from ..perturb.where import SLOT_KIND
from ..support import SupportSet

__all__ = ["NO_PERTURBATION", "perturb_inputs", "perturbation_choices"]

#: The perturbation choice that leaves the inputs alone.
NO_PERTURBATION = "none"


def perturb_inputs(
    image: np.ndarray,
    support: SupportSet,
    name: str,
    severity: int = 3,
    where: str = "target",
    seed: int = 0,
) -> tuple[np.ndarray, SupportSet]:
    """Corrupt the target and/or the support set with a registered perturbation.

    The target is perturbed at its own size (grayscale, min-max scaled to [0, 1] first); the support
    set at the model size. Label perturbations act on each label's indicator in turn (a later label
    wins where two overlap).

    Args:
        image: The target ``(H, W)`` or ``(H, W, 3)``.
        support: The support set.
        name: ``"none"`` or a name from :func:`~universeg_plus.perturb.list_perturbations`.
        severity: 1 (mildest) .. 5.
        where: A key of :data:`~universeg_plus.perturb.WHERE` (``"target"``, ``"support_images"``,
            ``"support_masks"``, ``"support"``, ``"both"``).
        seed: Seed of the perturbation's random values.

    Returns:
        ``(image, support)``: the target as ``(H, W)`` float32 in [0, 1] when it was perturbed
        (else unchanged) and the (possibly new) support set.

    Raises:
        ValueError: unknown name, severity or ``where``, or a perturbation that acts on none of the
            selected inputs (label noise needs support masks).
    """
    if name == NO_PERTURBATION:
        return image, support
    if where not in WHERE:
        raise ValueError(f"'where' must be one of {', '.join(WHERE)}, got {where!r}")
    if isinstance(severity, float) and severity.is_integer():
        severity = int(severity)
    pert = get_perturbation(name, severity, seed=int(seed))
    slots = [s for s in WHERE[where] if SLOT_KIND[s] == pert.kind]
    if not slots:
        needs = "support masks ('support_masks', 'support' or 'both')" if pert.kind == "mask" else "images"
        raise ValueError(
            f"the perturbation {name!r} changes {pert.kind}s, but where={where!r} selects only "
            f"{', '.join(WHERE[where])}: choose where it applies to {needs}"
        )
    images, masks = support.images, support.masks
    if "target" in slots:
        t = prepare_image(image, image.shape[:2], kind="target")  # (1, H, W) in [0, 1]
        image = pert(t[None])[0, 0].numpy().astype(np.float32)
    if "support_images" in slots:
        images = pert(images)
    if "support_masks" in slots:
        out = torch.zeros_like(masks)
        for c in support.classes:
            out = torch.where(pert((masks == c).float()) > 0.5, torch.full_like(masks, float(c)), out)
        masks = out
    if images is not support.images or masks is not support.masks:
        support = SupportSet(images, masks, support.original_sizes, support.names)
    return image, support


def perturbation_choices() -> list[str]:
    """``"none"`` followed by every registered perturbation name."""
    return [NO_PERTURBATION, *list_perturbations()]
