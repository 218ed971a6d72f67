"""Apply a perturbation to the target, the support images, the support masks, or several of them."""

from __future__ import annotations

from typing import Literal

import torch

from ..model import validate_inputs
from .base import Perturbation
from .compose import Compose

__all__ = ["WHERE", "Where", "apply_perturbation"]

Where = Literal["target", "support_images", "support_masks", "support", "both"]

#: where -> the inputs it selects. Image perturbations act on the selected images, label
#: perturbations on the selected masks.
WHERE: dict[str, tuple[str, ...]] = {
    "target": ("target",),
    "support_images": ("support_images",),
    "support_masks": ("support_masks",),
    "support": ("support_images", "support_masks"),
    "both": ("target", "support_images", "support_masks"),
}
#: What each slot holds: ``"image"`` (intensities) or ``"mask"`` (labels).
SLOT_KIND = {"target": "image", "support_images": "image", "support_masks": "mask"}


def _part(perturbation: Perturbation | Compose, kind: str) -> Perturbation | Compose | None:
    if isinstance(perturbation, Compose):
        return perturbation.only(kind)
    return perturbation if perturbation.kind == kind else None


def apply_perturbation(
    target: torch.Tensor,
    support_images: torch.Tensor,
    support_masks: torch.Tensor,
    perturbation: Perturbation | Compose,
    where: Where = "target",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Perturb the inputs that ``where`` selects; the others are returned as given (same objects).

    Args:
        target: ``(B, 1, H, W)`` float in [0, 1].
        support_images: ``(B, S, 1, H, W)`` float in [0, 1].
        support_masks: ``(B, S, 1, H, W)`` float in {0, 1}.
        perturbation: A perturbation or a :class:`Compose` (image members act on images, label
            members on masks).
        where: ``"target"``, ``"support_images"``, ``"support_masks"``, ``"support"`` (support
            images and masks) or ``"both"`` (target and support).

    Returns:
        ``(target, support_images, support_masks)``, shapes and dtypes unchanged.

    Raises:
        ValueError: unknown ``where``, or a perturbation that acts on none of the selected inputs
            (e.g. label noise with ``where="target"``); shape errors as for the model.
        TypeError: ``perturbation`` is not a Perturbation/Compose; non-tensor inputs.
    """
    if not isinstance(where, str) or where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(map(repr, WHERE))}, got {where!r}")
    if not isinstance(perturbation, (Perturbation, Compose)):
        raise TypeError(f"perturbation must be a Perturbation or Compose, got {type(perturbation).__name__}")
    validate_inputs(target, support_images, support_masks)
    out = {"target": target, "support_images": support_images, "support_masks": support_masks}
    applied = False
    for slot in WHERE[where]:
        part = _part(perturbation, SLOT_KIND[slot])
        if part is not None:
            out[slot] = part(out[slot])
            applied = True
    if not applied:
        kinds = perturbation.kinds if isinstance(perturbation, Compose) else {perturbation.kind}
        acts = " and ".join(sorted(f"{k}s" for k in kinds))
        raise ValueError(
            f"{perturbation!r} acts on {acts}, but where={where!r} selects only {', '.join(WHERE[where])}; "
            "label noise needs where='support_masks', 'support' or 'both'"
            if "mask" in kinds
            else f"{perturbation!r} acts on {acts}, but where={where!r} selects only support masks"
        )
    return out["target"], out["support_images"], out["support_masks"]
