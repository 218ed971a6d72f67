"""The demo's Colour choice: RGB support uploads projected to grey by a projection fitted on them.

With ``"fisher"`` or ``"auto"`` and RGB support images, :meth:`Predictor.set_support(..., colour=)
<universeg_plus.predictor.Predictor.set_support>` fits the projection (docs/colour.md); the support
set and the target are then handed on grey, as the network sees them, so that the perturbations and
the result images work on exactly that. Grey support images have no colour to project: they stay as
they are, and the summary says so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..colour import COLOUR_MODES
from ..io.inputs import Named, image_array
from ..support import SupportSet
from .uploads import MAX_MASK_LABELS, check_foreground, load_support, support_pairs

__all__ = ["colour_markdown", "project_uploads"]


def project_uploads(
    predictor: Any,
    image_files: Sequence[str | os.PathLike] | None,
    mask_files: Sequence[str | os.PathLike] | None,
    target: np.ndarray,
    colour: str,
) -> tuple[SupportSet, np.ndarray, str]:
    """The support set and target made grey by the ``colour`` projection fitted on the support uploads.

    Args:
        predictor: The Predictor of the click (its model scores ``"auto"``; its support is set here).
        image_files, mask_files: The uploads, paired in file-name order.
        target: The target ``(H, W)`` or ``(H, W, 3)`` as read.
        colour: ``"luma"``, ``"fisher"`` or ``"auto"``.

    Returns:
        ``(support, target, line)``: the support set at the model size (grey; no projection recorded,
        the target is already projected), the target ``(H, W)`` float32 in [0, 1] when projected
        (else as given), and the summary's line on the projection used.

    Raises:
        ValueError: an unknown choice; bad uploads; a grey target or a mix of grey and colour
            support images with a colour projection; no foreground in any mask.
    """
    if colour not in COLOUR_MODES:
        raise ValueError(f"the colour choice must be one of {', '.join(COLOUR_MODES)}, got {colour!r}")
    if colour == "luma":  # the input rules, as always
        return load_support(image_files, mask_files, predictor.input_size), target, "luma"
    images, masks = support_pairs(image_files, mask_files)
    arrays = [Named(image_array(n, "support image", keep_rgb=True), n.name) for n in images]
    if not any(a.value.ndim == 3 for a in arrays):
        support = SupportSet.from_arrays(arrays, masks, size=predictor.input_size, max_labels=MAX_MASK_LABELS)
        note = f"luma ({colour} asked; the support images are grey: nothing to project)"
        return check_foreground(support), target, note
    predictor.set_support(arrays, masks, colour=colour, max_labels=MAX_MASK_LABELS)
    support = check_foreground(predictor.support.with_colour(None))
    proj, scores = predictor.colour, predictor.colour_scores
    line = colour_markdown(colour, proj.name, proj.weights if not proj.is_luma else None, scores)
    if proj.is_luma:  # "auto" kept the input rules' luma: the target as it is
        return support, target, line
    if np.ndim(target) != 3:
        raise ValueError(
            f"the target is grey, but the support images were projected from colour ({proj.name}): upload the "
            "target in colour too, or choose Colour: luma"
        )
    return support, proj(target), line


def colour_markdown(
    asked: str, used: str, weights: Sequence[float] | None, scores: dict[str, float]
) -> str:
    """``fisher (asked: auto; weights R 0.71, G -0.19, B -0.10); leave-one-out Dice on the support set: ...``."""
    text = used + (f" (asked: {asked})" if asked != used else "")
    if weights is not None:
        text += "; weights " + ", ".join(f"{c} {w:.2f}" for c, w in zip("RGB", weights))
    if scores:
        text += "; leave-one-out Dice on the support set: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return text
