"""The few-shot demo's logic in plain Python (no gradio): uploads in, overlay, probabilities, Dice, files out.

The gradio page (:mod:`universeg_plus.demo.ui`) only collects the inputs and calls
:func:`run_segmentation`; everything it shows comes from here and from the modules this one
gathers (:mod:`.models` networks, :mod:`.examples` bundled tasks, :mod:`.uploads` reading the
uploads through :mod:`universeg_plus.io.inputs`, :mod:`.perturbation`, :mod:`.outputs`), so it is
tested without a browser. Errors a user can fix (bad uploads, impossible settings) are raised as
``ValueError`` with a message that names the uploaded file by its own name, never by gradio's
temporary path.

::

    cache = ModelCache()
    result = run_segmentation(
        ["a.png", "b.png"], ["a_mask.png", "b_mask.png"], "new.png", None,
        SegmentSettings(), cache, out_dir="outputs/",
    )
    result.overlay      # (H, W, 3) uint8: the target with the predicted mask coloured in
    result.files        # [<stem>_mask.png] (+ <stem>_mask.nii.gz for NIfTI targets)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import overlay_mask
from ..io.inputs import Named
from ..predictor import Prediction
from ..support import SupportSet
from .colour_choice import project_uploads
from .examples import ExampleTask, default_examples_dir, list_example_tasks
from .models import ModelCache, available_backends, default_model_name, has_pretrained, weights_warning
from .outputs import dice_per_label, probability_image, write_outputs
from .perturbation import NO_PERTURBATION, perturb_inputs, perturbation_choices
from .uncertainty_view import regions_markdown, uncertainty_image
from .uploads import MAX_MASK_LABELS, Target, load_reference, load_support, load_target

__all__ = [
    "MAX_MASK_LABELS",
    "NO_PERTURBATION",
    "ExampleTask",
    "ModelCache",
    "SegmentResult",
    "SegmentSettings",
    "Target",
    "available_backends",
    "default_examples_dir",
    "default_model_name",
    "dice_per_label",
    "has_pretrained",
    "list_example_tasks",
    "load_reference",
    "load_support",
    "load_target",
    "perturb_inputs",
    "perturbation_choices",
    "probability_image",
    "run_segmentation",
    "weights_warning",
]


@dataclass(frozen=True)
class SegmentSettings:
    """The controls of one Segment click.

    Attributes:
        model: Registered model name (default: the best model with pretrained weights).
        backend: ``"eager"`` or ``"tvm"``.
        support_size: Support examples per subset (``None`` or 0: the predictor's default).
        ensemble: Number of support subsets averaged.
        threshold: Foreground cut-off in (0, 1).
        perturbation: ``"none"`` or a perturbation name.
        severity: Perturbation severity 1..5.
        where: Which inputs the perturbation changes (a key of ``WHERE``).
        slice_index: Slice of a volume target (``None``: the middle one).
        axis: Slicing axis of a volume target.
        seed: Seed of the support-subset draw, the perturbation and the adaptation.
        adapt_steps: Fine-tune a copy of the model on the support set for this many steps first
            (``Predictor.adapt``; 0 = off, eager backend only).
        samples: Sampled masks for the uncertainty map (``Predictor.predict(samples=K)``; 1 = off).
        colour: How RGB support images and target become grey (docs/colour.md): ``"luma"`` (the
            input rules'), ``"fisher"`` or ``"auto"`` (fitted on the support uploads; grey uploads
            stay as they are).
    """

    model: str = field(default_factory=default_model_name)
    backend: str = "eager"
    support_size: int | None = None
    ensemble: int = 1
    threshold: float = 0.5
    perturbation: str = NO_PERTURBATION
    severity: int = 3
    where: str = "target"
    slice_index: int | None = None
    axis: int = 2
    seed: int = 0
    adapt_steps: int = 0
    samples: int = 1
    colour: str = "luma"


@dataclass
class SegmentResult:
    """What one Segment click shows and offers.

    Attributes:
        overlay: ``(H, W, 3)`` uint8, the (possibly perturbed) target with the mask coloured in.
        probability: ``(H, W)`` uint8 foreground probability (see :func:`probability_image`).
        prediction: The predictor's output at the target's size.
        image: The target as the model saw it (after any perturbation).
        dice: Dice per support label against the reference, or ``None`` without a reference.
        files: The mask as PNG (label values as they are), and as NIfTI for NIfTI targets.
        summary: Markdown describing the run.
        warnings: Things the user should know (random weights, labels missing from the support...).
        uncertainty: ``(H, W, 3)`` uint8 uncertainty heat map with the regions most likely wrong
            outlined (``samples > 1``), else ``None``.
    """

    overlay: np.ndarray
    probability: np.ndarray
    prediction: Prediction
    image: np.ndarray
    dice: dict[int, float] | None
    files: list[Path]
    summary: str
    warnings: list[str] = field(default_factory=list)
    uncertainty: np.ndarray | None = None


def _int_or_none(value: Any, what: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    f = float(value)
    if not f.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    v = int(f)
    if v < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {v}")
    return v


def _summary(
    settings: SegmentSettings,
    support: SupportSet,
    target: Target,
    pred: Prediction,
    scores: dict[int, float] | None,
    warnings: list[str],
    seconds: float,
    colour: str,
) -> str:
    lines = [f"**Model** `{settings.model}` ({settings.backend})"]
    lines[0] += ", pretrained weights" if has_pretrained(settings.model) else ", **random weights**"
    lines.append(
        f"**Support** {len(support)} examples, labels {support.classes}; support size used "
        f"{settings.support_size or 'default'}, ensemble {settings.ensemble}, threshold {settings.threshold:g}"
    )
    if settings.colour != "luma":
        lines.append(f"**Colour** {colour}")
    if settings.adapt_steps:
        lines.append(f"**Adapted** to the support set: {settings.adapt_steps} steps (a fine-tuned copy of the model)")
    if settings.perturbation != NO_PERTURBATION:
        lines.append(f"**Perturbation** {settings.perturbation}, severity {settings.severity}, on {settings.where}")
    lines.append(f"**Target** {target.describe()}")
    fg = {c: int(np.count_nonzero(pred.mask == c)) for c in pred.classes}
    lines.append("**Predicted pixels** " + ", ".join(f"label {c}: {n}" for c, n in fg.items()))
    if scores is not None:
        per = ", ".join(f"label {c}: {d:.3f}" for c, d in scores.items())
        lines.append(f"**Dice** {float(np.mean(list(scores.values()))):.3f} (mean; {per})")
    if pred.uncertainty is not None:
        lines.append(regions_markdown(pred, settings.samples))
    lines.append(f"**Time** {seconds:.2f} s")
    lines += [f"⚠️ {w}" for w in warnings]
    return "\n".join(f"- {line}" for line in lines)


def run_segmentation(
    support_images: Sequence[str | os.PathLike] | None,
    support_masks: Sequence[str | os.PathLike] | None,
    target_file: str | os.PathLike | None,
    reference_file: str | os.PathLike | None,
    settings: SegmentSettings,
    cache: ModelCache,
    out_dir: str | os.PathLike,
) -> SegmentResult:
    """Everything behind the Segment button.

    Args:
        support_images: Support image files.
        support_masks: Their mask files (paired in file-name order, see :func:`load_support`).
        target_file: The image or volume to segment.
        reference_file: Optional reference mask of the target, for Dice.
        settings: The controls.
        cache: Where networks are loaded once.
        out_dir: Folder for the downloadable files (a fresh subfolder per call).

    Returns:
        :class:`SegmentResult`.

    Raises:
        ValueError: bad uploads or settings (the message says what to change).
        ImportError: the TVM backend was chosen but cannot be used.
    """
    start = time.perf_counter()
    support_size = _int_or_none(settings.support_size, "the support size", 0) or None
    ensemble = _int_or_none(settings.ensemble, "the ensemble size", 1) or 1
    adapt_steps = _int_or_none(settings.adapt_steps, "the adaptation steps", 0) or 0
    samples = _int_or_none(settings.samples, "the number of samples", 1) or 1
    if samples > 1 and ensemble > 1:
        raise ValueError("sampled masks draw their own support subsets: set the ensemble to 1 to use samples")
    if adapt_steps and settings.backend != "eager":
        raise ValueError(f"adaptation fine-tunes the eager model; choose the eager backend (got {settings.backend})")
    slice_index = _int_or_none(settings.slice_index, "the slice index", 0)
    threshold = float(settings.threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the threshold must be strictly between 0 and 1, got {threshold:g}")
    predictor = cache.predictor(settings.model, settings.backend)
    target = load_target(target_file, slice_index, int(settings.axis))
    reference = load_reference(reference_file, target)
    # grey as the network sees it: luma, or the support set's colour projection (also the target)
    support, grey, colour = project_uploads(predictor, support_images, support_masks, target.image, settings.colour)
    image, support = perturb_inputs(grey, support, settings.perturbation, settings.severity, settings.where,
                                    settings.seed)
    shown = target.image if image is grey else image  # the target as uploaded, unless perturbed
    predictor.set_support(support)  # a new support set also drops an adapted copy of an earlier click
    if adapt_steps:
        predictor.adapt(steps=adapt_steps, seed=int(settings.seed), progress=True)
    pred = predictor.predict(
        Named(image, f"{target.name} (the target)"), threshold=threshold, ensemble=ensemble,
        support_size=support_size, seed=int(settings.seed), samples=samples,
    )
    warnings = [w for w in [weights_warning(settings.model)] if w]
    scores = None
    if reference is not None:
        scores = dice_per_label(pred.mask, reference, pred.classes)
        extra = sorted(set(np.unique(reference).tolist()) - {0, *pred.classes})
        if extra:
            warnings.append(f"the reference has label(s) {extra} that no support mask has; they are not scored")
    files = write_outputs(target, pred.mask, Path(out_dir))
    result = SegmentResult(
        overlay=overlay_mask(shown, pred.mask),
        probability=probability_image(pred.probabilities),
        prediction=pred,
        image=image,
        dice=scores,
        files=files,
        summary="",
        warnings=warnings,
        uncertainty=uncertainty_image(pred),
    )
    used = dataclasses.replace(
        settings, support_size=support_size, ensemble=ensemble, threshold=threshold, adapt_steps=adapt_steps,
        samples=samples,
    )
    result.summary = _summary(used, support, target, pred, scores, warnings, time.perf_counter() - start, colour)
    return result

