"""Held-out evaluation of sampling and uncertainty: best-of-K Dice, calibration and error detection.

For each task and support size (the protocol of :mod:`~universeg_plus.evaluation.protocol`: the same
targets and main support set as ``universeg-plus evaluate``), every target is segmented twice through
the Predictor: once plainly (``samples=1``) and once with ``samples=K``. Per image the raw
probabilities are kept at the image's own size, so that metrics can be computed afterwards for any
calibration (:func:`score_images`), e.g. before and after fitting one on validation tasks:

* Dice of the single mask, of the mean mask, the best of the K masks and the mean of their Dice;
* ECE over the relevant pixels (probability > 0.02 or true foreground), pooled over the images;
* AUROC of the uncertainty for wrong pixels inside the boundary band (2% of the longer side of the
  predicted or the true boundary), pooled;
* Spearman correlation, over images, between the image score and ``1 - Dice``;
* wall time of each.

The single prediction's uncertainty is the entropy of its own (calibrated) probability, its image
score the expected ``1 - Dice`` of its mask under that probability.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..predictor import Predictor
from ..uncertainty import Calibration, ModelCalibration, binary_entropy, expected_dice_error, uncertainty_map
from ..uncertainty.metrics import auroc, boundary_band, candidate_dice, expected_calibration_error, spearman
from .native import EvalTask, as_eval_tasks
from .protocol import make_episodes, task_seed
from .runner import support_set

__all__ = ["ImageSamples", "evaluate_uncertainty", "score_images", "uncertainty_rows"]

log = logging.getLogger(__name__)


@dataclass
class ImageSamples:
    """One target's single and K-sample predictions at its own size (raw, uncalibrated).

    Attributes:
        task, support_size, target: Which episode and target (``support_size``: the S used).
        truth: ``(H, W)`` bool.
        single: ``(H, W)`` float32 probability of the plain prediction.
        mean: ``(H, W)`` float32 mean of the K samples' probabilities.
        disagreement: ``(H, W)`` float32, how split the K masks are (see
            :func:`~universeg_plus.uncertainty.aggregate.uncertainty_map`).
        dice_each: Dice of each of the K masks.
        seconds_single, seconds_samples: Wall time of this target's share of each.
        requested_support: The S asked for (larger than ``support_size`` when the task's pool is
            smaller); tables group by it, as ``evaluate``'s do.
        reported: ``(H, W)`` float32, the probability the Predictor reported with ``samples=K``
            (calibrated on the support set itself), ``None`` in caches written before it.
    """

    task: str
    support_size: int
    target: int
    truth: np.ndarray
    single: np.ndarray
    mean: np.ndarray
    disagreement: np.ndarray
    dice_each: list[float] = field(default_factory=list)
    seconds_single: float = 0.0
    seconds_samples: float = 0.0
    requested_support: int = 0
    reported: np.ndarray | None = None


def evaluate_uncertainty(
    model: Any,
    tasks: Sequence[EvalTask],
    support_sizes: Sequence[int] = (4, 16),
    samples: int = 8,
    num_targets: int = 10,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = True,
    device: torch.device | str = "cpu",
    calibration: ModelCalibration | None = None,
) -> list[ImageSamples]:
    """Single and K-sample predictions of every protocol target (see the module docstring).

    Args:
        model: The model (or a compiled one); it runs through a :class:`~universeg_plus.predictor.Predictor`
            with ``calibration`` (which cuts the samples' masks at their levels); the probabilities
            are kept raw (the calibration undone), to be calibrated by :func:`score_images`.
        tasks: Binary tasks at their own size (:func:`~universeg_plus.evaluation.native.native_tasks`).
        support_sizes: Requested S values.
        samples: K.
        num_targets: Targets per task (the protocol's cap).
        threshold: Foreground cut-off.
        seed: Protocol seed; each episode's sampling plan is seeded from it and the task.
        progress: tqdm bar over episodes.
        device: Where the model runs.
        calibration: The model's calibration (e.g. :func:`~universeg_plus.uncertainty.model_calibration`).

    Returns:
        One :class:`ImageSamples` per (task, S, target).
    """
    from tqdm.auto import tqdm

    if samples < 2:
        raise ValueError(f"samples must be >= 2 to measure a spread, got {samples}")
    tasks = as_eval_tasks(tasks)
    predictor = Predictor(model, device=device, calibration=calibration)
    undo_1 = calibration.single.inverse() if calibration else Calibration()
    episodes = make_episodes(tasks, support_sizes, num_targets, ensemble=1, seed=seed)
    by_name = {t.name: t for t in tasks}
    out: list[ImageSamples] = []
    done: set[tuple[str, int]] = set()
    for ep in tqdm(episodes, desc="uncertainty", disable=not progress, unit="episode"):
        if (ep.task, ep.support_size) in done:
            continue
        done.add((ep.task, ep.support_size))
        task = by_name[ep.task]
        targets = [task.images[t] for t in ep.targets]
        support = support_set(task, ep.supports[0], predictor.input_size)
        predictor.set_support(support)
        t0 = time.perf_counter()
        single = predictor.predict_many(targets, threshold=threshold)
        t1 = time.perf_counter()
        plan_seed = task_seed(seed, ep.task, ep.support_size) % (2**31)
        sampled = predictor.predict_many(targets, threshold=threshold, samples=samples, seed=plan_seed)
        t2 = time.perf_counter()
        for t_idx, one, many in zip(ep.targets, single, sampled):
            truth = task.masks[t_idx]
            votes = torch.as_tensor((many.sample_masks > 0).astype(np.float32))
            out.append(
                ImageSamples(
                    ep.task,
                    ep.support_size,
                    t_idx,
                    truth,
                    undo_1(one.probabilities),
                    _raw(many),
                    uncertainty_map(votes, kind="disagreement").numpy(),
                    candidate_dice(many.sample_masks > 0, truth)["each"],
                    (t1 - t0) / len(targets),
                    (t2 - t1) / len(targets),
                    ep.requested_support,
                    many.probabilities,
                )
            )
        log.info("%s S=%d: %d targets, %.1f s single, %.1f s samples", ep.task, ep.support_size, len(targets), t1 - t0, t2 - t1)
    return out


def _raw(pred: Any) -> np.ndarray:
    """A prediction's probabilities with its calibration undone."""
    cal = pred.calibration
    return pred.probabilities if cal is None else cal.inverse()(pred.probabilities)


def _requested(im: ImageSamples) -> int:
    return im.requested_support or im.support_size


def _dice(mask: np.ndarray, truth: np.ndarray) -> float:
    den = mask.sum() + truth.sum()
    return 1.0 if den == 0 else float(2 * (mask & truth).sum() / den)


def score_images(
    images: Sequence[ImageSamples],
    single_calibration: Calibration | None = None,
    samples_calibration: Calibration | None = None,
    kind: str = "error",
    threshold: float = 0.5,
    floor: float = 0.02,
    band: float = 0.02,
) -> dict[str, dict[str, float]]:
    """The issue's metrics for ``"single"`` and ``"samples"`` over a set of images (pooled).

    Args:
        images: From :func:`evaluate_uncertainty`.
        single_calibration / samples_calibration: Maps applied to the single / sampled probabilities;
            ``samples_calibration="support"``: the sampled prediction as the Predictor reported it
            (calibrated on its support set, leave-one-out).
        kind: Uncertainty map: ``"error"`` (the calibrated probability that the mask is wrong, single
            and samples), ``"entropy"`` of the calibrated probability, or the samples' ``"disagreement"``
            (the single prediction then keeps its entropy).
        threshold: Foreground cut-off (on the uncalibrated probabilities: the masks are the model's).
        floor: Relevance floor of the ECE.
        band: Boundary band half-width as a fraction of the longer side.

    Returns:
        ``{"single": {...}, "samples": {...}}`` with keys ``dice`` (single mask / mean mask),
        ``best_dice``, ``mean_dice`` (samples only), ``ece_relevant``, ``ece_all``, ``auroc_band``,
        ``auroc_all``, ``spearman``, ``seconds`` (per image), ``images``.
    """
    if not images:
        raise ValueError("no images to score")
    cal_1 = single_calibration or Calibration()
    reported = samples_calibration == "support"
    cal_k = Calibration() if reported else (samples_calibration or Calibration())
    out: dict[str, dict[str, float]] = {}
    for method in ("single", "samples"):
        probs, truths, rel, unc_band, wrong_band, unc_all, wrong_all = [], [], [], [], [], [], []
        dices, scores, secs = [], [], []
        for im in images:
            raw = im.single if method == "single" else im.mean
            if method == "samples" and reported:
                if im.reported is None:
                    raise ValueError("these predictions keep no reported probabilities: recompute them")
                p = im.reported
            else:
                p = (cal_1 if method == "single" else cal_k)(raw)
            mask = raw > threshold
            if kind == "error":  # the probability that the mask is wrong at the pixel
                u = np.where(mask, 1 - p, p)
            elif method == "single" or kind == "entropy":
                u = binary_entropy(torch.as_tensor(p)).numpy()
            elif kind == "disagreement":
                u = im.disagreement
            else:
                raise ValueError(f"kind must be 'error', 'entropy' or 'disagreement' here, got {kind!r}")
            wrong = mask != im.truth
            b = boundary_band(mask, im.truth, band)
            probs.append(p.ravel())
            truths.append(im.truth.ravel())
            rel.append(((p > floor) | im.truth).ravel())
            unc_band.append(u[b])
            wrong_band.append(wrong[b])
            unc_all.append(u.ravel())
            wrong_all.append(wrong.ravel())
            dices.append(_dice(mask, im.truth))
            scores.append(float(expected_dice_error(torch.as_tensor(raw), torch.as_tensor(mask))))
            secs.append(im.seconds_single if method == "single" else im.seconds_samples)
        p_all, t_all = np.concatenate(probs), np.concatenate(truths)
        row = {
            "images": float(len(images)),
            "dice": float(np.mean(dices)),
            "ece_relevant": expected_calibration_error(p_all, t_all, np.concatenate(rel)),
            "ece_all": expected_calibration_error(p_all, t_all),
            "auroc_band": auroc(np.concatenate(unc_band), np.concatenate(wrong_band)),
            "auroc_all": auroc(np.concatenate(unc_all), np.concatenate(wrong_all)),
            "spearman": spearman(np.asarray(scores), 1 - np.asarray(dices)),
            "seconds": float(np.mean(secs)),
        }
        if method == "samples":
            row["best_dice"] = float(np.mean([max(im.dice_each) for im in images]))
            row["mean_dice"] = float(np.mean([np.mean(im.dice_each) for im in images]))
        out[method] = row
    return out


def uncertainty_rows(
    images: Sequence[ImageSamples], samples: int, calibration: Any | None = None, kind: str = "error",
    support: bool = False,
) -> list[dict[str, Any]]:
    """One row per (requested S, method) of :func:`score_images`, plus the all-S pool (``support_size`` "all").

    ``calibration`` (a :class:`~universeg_plus.uncertainty.ModelCalibration`) maps both rows; with
    ``support=True`` the sampled row is what the Predictor reported (calibrated on its support set)."""
    rows = []
    sizes = sorted({_requested(im) for im in images})
    for s in [*sizes, 0] if len(sizes) > 1 else sizes:
        pool = [im for im in images if s == 0 or _requested(im) == s]
        cal_1 = calibration.for_samples(1) if calibration is not None else None
        cal_k = calibration.for_samples(samples) if calibration is not None else None
        scored = score_images(pool, cal_1, "support" if support else cal_k, kind)
        for method, row in scored.items():
            rows.append({"support_size": s or "all", "method": method if method == "single" else f"K={samples}", **row})
    return rows


def fmt(value: float) -> str:
    """A metric for a table: 3 decimals, ``-`` for NaN."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


#: The issue's targets: (metric, method row, comparison, value); "single" means relative to the single row.
TARGETS = (
    ("ece_relevant", "samples", "<=", 0.05),
    ("auroc_band", "samples", ">=", 0.75),
    ("spearman", "samples", ">=", 0.85),
    ("best_dice", "samples", ">= single +", 0.10),
    ("dice", "samples", ">= single +", 0.0),
)

ROW_FIELDS = [
    "support_size", "method", "images", "dice", "best_dice", "mean_dice", "ece_relevant", "ece_all",
    "auroc_band", "auroc_all", "spearman", "seconds",
]
IMAGE_FIELDS = [
    "task", "requested_support", "support_size", "target", "dice_single", "dice_mean", "best_dice", "mean_dice",
    "seconds_single", "seconds_samples",
]


def target_checks(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of :data:`TARGETS` for each support size: value, goal, met (True/False)."""
    out = []
    for s in dict.fromkeys(r["support_size"] for r in rows):
        single = next(r for r in rows if r["support_size"] == s and r["method"] == "single")
        many = next(r for r in rows if r["support_size"] == s and r["method"] != "single")
        for metric, _, op, goal in TARGETS:
            value = many[metric]
            if op.startswith(">= single"):
                lift = value - single["dice"]
                out.append({"support_size": s, "metric": f"{metric} - single dice", "value": lift,
                            "goal": f">= {goal:+.2f}", "met": lift >= goal})
            else:
                met = value <= goal if op == "<=" else value >= goal
                out.append({"support_size": s, "metric": metric, "value": value, "goal": f"{op} {goal}", "met": met})
    return out


def image_rows(images: Sequence[ImageSamples], threshold: float = 0.5) -> list[dict[str, Any]]:
    """One row per image: Dice of the single mask, of the mean mask, best and mean of the K; seconds."""
    return [
        {
            "task": im.task,
            "requested_support": _requested(im),
            "support_size": im.support_size,
            "target": im.target,
            "dice_single": _dice(im.single > threshold, im.truth),
            "dice_mean": _dice(im.mean > threshold, im.truth),
            "best_dice": max(im.dice_each),
            "mean_dice": float(np.mean(im.dice_each)),
            "seconds_single": im.seconds_single,
            "seconds_samples": im.seconds_samples,
        }
        for im in images
    ]


def markdown_uncertainty(rows: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]], samples: int) -> str:
    """The metrics table (one row per S and method) and the targets, met or missed."""
    from ..io.tables import markdown_table

    head = ["S", "method", "images", "Dice", f"best of {samples}", f"mean of {samples}", "ECE relevant",
            "ECE all", "AUROC band", "AUROC all", "Spearman", "s / image"]
    body = [
        [r["support_size"], r["method"], int(r["images"]), fmt(r["dice"]), fmt(r.get("best_dice", float("nan"))),
         fmt(r.get("mean_dice", float("nan"))), fmt(r["ece_relevant"]), fmt(r["ece_all"]), fmt(r["auroc_band"]),
         fmt(r["auroc_all"]), fmt(r["spearman"]), f"{r['seconds']:.2f}"]
        for r in rows
    ]
    lines = markdown_table(head, body)
    lines += ["", "Targets (issue 28):", ""]
    lines += markdown_table(
        ["S", "metric", "value", "goal", "result"],
        [[c["support_size"], c["metric"], fmt(c["value"]), c["goal"], "met" if c["met"] else "**missed**"] for c in checks],
    )
    return "\n".join(lines) + "\n"


def write_uncertainty_report(
    images: Sequence[ImageSamples],
    samples: int,
    out: Any,
    calibration: Any | None = None,
    kind: str = "error",
    header: str = "",
) -> dict[str, Any]:
    """Write ``uncertainty.csv``, ``uncertainty_per_image.csv`` and ``uncertainty.md`` into ``out``.

    Returns:
        ``{"rows": ..., "checks": ..., "markdown": ..., "paths": {...}}``.
    """
    from pathlib import Path

    from ..io.atomic import atomic_write_text
    from ..io.tables import write_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = uncertainty_rows(images, samples, calibration, kind, support=True)
    checks = target_checks(rows)
    md = (header + "\n" if header else "") + markdown_uncertainty(rows, checks, samples)
    paths = {
        "table": write_csv(rows, ROW_FIELDS, out / "uncertainty.csv"),
        "images": write_csv(image_rows(images), IMAGE_FIELDS, out / "uncertainty_per_image.csv"),
        "markdown": atomic_write_text(out / "uncertainty.md", md),
    }
    return {"rows": rows, "checks": checks, "markdown": md, "paths": paths}
