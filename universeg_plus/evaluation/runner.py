"""Run the held-out protocol: in-context model (with and without ensembling) and the U-Net baseline.

    from universeg_plus.evaluation import EvalSettings, evaluate
    result = evaluate(model, tasks, EvalSettings(support_sizes=(1, 4, 16, 64), ensemble=5, baseline=True))
    result.records  # one dict per (task, S, method, target): dice, iou, sensitivity, specificity, hd95

Everything happens at the tasks' stored resolution (the model's ``input_size``): targets, support
sets and metrics alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import metrics
from ..data.tasks import BinaryTask
from .baseline import BaselineConfig, predict_baseline, train_baseline
from .protocol import DEFAULT_SUPPORT_SIZES, make_episodes, task_seed

__all__ = ["METHODS", "EvalSettings", "EvaluationResult", "evaluate"]

log = logging.getLogger(__name__)

#: Method names in the records: the model with one support set, with an ensemble of support sets,
#: and the per-task U-Net.
METHODS = ("universeg", "universeg_ensemble", "unet")
METRICS = ("dice", "iou", "sensitivity", "specificity", "hd95")


class EvalSettings(BaseModel):
    """What to evaluate.

    Attributes:
        support_sizes: Requested S values (capped per task by its support pool).
        num_targets: Targets per task (see :func:`~universeg_plus.evaluation.protocol.make_episodes`).
        max_target_fraction: At most this fraction of a task's pairs become targets.
        ensemble: Support sets averaged per prediction for the ensemble rows (1: no ensemble rows).
        ensemble_max_support: Ensemble rows only for S up to this (``None``: all S).
        threshold: Foreground when the (averaged) probability exceeds it.
        batch_size: Targets per forward pass.
        seed: Protocol seed (targets, support sets, baseline training).
        baseline: Also train and evaluate the per-task U-Net.
        baseline_config: Its fixed budget.
        baseline_support_sizes: Requested S values the U-Net is trained for (``None``: all of
            ``support_sizes``); it trains one network per (task, S), the costly part of a run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    support_sizes: tuple[int, ...] = DEFAULT_SUPPORT_SIZES
    num_targets: int = Field(10, ge=1)
    max_target_fraction: float = Field(0.5, gt=0, lt=1)
    ensemble: int = Field(5, ge=1)
    ensemble_max_support: int | None = Field(16, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    batch_size: int = Field(8, ge=1)
    seed: int = 0
    baseline: bool = False
    baseline_config: BaselineConfig = Field(default_factory=BaselineConfig)
    baseline_support_sizes: tuple[int, ...] | None = None

    @field_validator("support_sizes")
    @classmethod
    def _sizes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(s < 1 for s in v):
            raise ValueError(f"support_sizes must be a non-empty list of integers >= 1, got {v}")
        return tuple(dict.fromkeys(v))

    @model_validator(mode="after")
    def _baseline_sizes(self) -> EvalSettings:
        extra = sorted(set(self.baseline_support_sizes or ()) - set(self.support_sizes))
        if extra:
            raise ValueError(
                f"baseline_support_sizes {extra} are not in support_sizes {list(self.support_sizes)}"
            )
        return self

    def runs_baseline(self, requested_support: int) -> bool:
        """Whether the U-Net is trained and scored for this requested S."""
        sizes = self.baseline_support_sizes
        return self.baseline and (sizes is None or requested_support in sizes)


@dataclass
class EvaluationResult:
    """Per-target records and what produced them.

    Attributes:
        records: One dict per (task, requested S, method, target) with keys ``task, dataset,
            method, requested_support, support_size, ensemble, target, stem`` and the metrics
            ``dice, iou, sensitivity, specificity, hd95`` (hd95 in pixels at the evaluation size).
        settings: The settings used.
        image_size: ``(H, W)`` the metrics were computed at.
        info: Free-form description (model name, weights, device) carried into reports.
    """

    records: list[dict[str, Any]]
    settings: EvalSettings
    image_size: tuple[int, int]
    info: dict[str, Any] = field(default_factory=dict)


def _metric_rows(pred: torch.Tensor, ref: torch.Tensor) -> list[dict[str, float]]:
    """``pred, ref (T, 1, H, W)`` bool -> one metrics dict per target."""
    p, r = pred[:, 0], ref[:, 0]
    cols = {
        "dice": metrics.dice(p, r),
        "iou": metrics.iou(p, r),
        "sensitivity": metrics.sensitivity(p, r),
        "specificity": metrics.specificity(p, r),
        "hd95": metrics.hd95(p, r),
    }
    return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(p))]


def _wants_ensemble(settings: EvalSettings, requested_support: int) -> bool:
    cap = settings.ensemble_max_support
    return settings.ensemble > 1 and (cap is None or requested_support <= cap)


@torch.no_grad()
def _model_probs(
    model: Callable[..., torch.Tensor],
    task: BinaryTask,
    targets: Sequence[int],
    support: Sequence[int],
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Foreground probabilities ``(T, 1, H, W)`` on CPU for the targets given one support set."""
    sup_i = task.images[list(support)].to(device)[None]
    sup_m = task.masks[list(support)].to(device)[None]
    tgt_all = task.images[list(targets)]
    out = []
    for i in range(0, len(tgt_all), batch_size):
        tgt = tgt_all[i : i + batch_size].to(device)
        b = tgt.shape[0]
        logits = model(tgt, sup_i.expand(b, -1, -1, -1, -1), sup_m.expand(b, -1, -1, -1, -1))
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out)


def evaluate(
    model: Callable[..., torch.Tensor],
    tasks: Sequence[BinaryTask],
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    info: dict[str, Any] | None = None,
) -> EvaluationResult:
    """Evaluate an in-context model (and optionally the U-Net baseline) on held-out tasks.

    Args:
        model: A :class:`~universeg_plus.model.UniverSegPlus` (moved to ``device``, eval mode) or
            any callable with the model contract (e.g. a compiled model).
        tasks: Binary tasks at the model's input size (images ``(N, 1, H, W)`` in [0, 1], masks
            in {0, 1}); none may have been used to train ``model`` (see
            :func:`~universeg_plus.evaluation.holdout.check_held_out`).
        settings: Protocol and methods (default :class:`EvalSettings`).
        device: Where the model (and the baseline) run.
        progress: Show a tqdm bar over (task, S).
        info: Description carried into the result.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        ValueError: no tasks, tasks of different sizes, or no task with at least 2 pairs.
    """
    from tqdm.auto import tqdm

    settings = settings or EvalSettings()
    tasks = list(tasks)
    if not tasks:
        raise ValueError("no tasks to evaluate")
    sizes = {t.size for t in tasks}
    if len(sizes) != 1:
        raise ValueError(f"all tasks must be stored at one size, got {sorted(sizes)}")
    image_size = sizes.pop()
    dev = torch.device(device)
    if isinstance(model, torch.nn.Module):
        model = model.to(dev).eval()
    episodes = make_episodes(
        tasks,
        settings.support_sizes,
        settings.num_targets,
        settings.max_target_fraction,
        settings.ensemble,
        settings.ensemble_max_support,
        settings.seed,
    )
    if not episodes:
        raise ValueError("no task has at least 2 pairs (a target and a support example)")
    by_name = {t.name: t for t in tasks}
    records: list[dict[str, Any]] = []
    # (task, actual S, method) -> per-target metric rows; requested sizes capped to one S share it
    cache: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    bar = tqdm(episodes, desc="evaluate", disable=not progress, unit="episode")
    for ep in bar:
        bar.set_postfix_str(f"{ep.task} S={ep.support_size}")
        task = by_name[ep.task]
        ref = task.masks[list(ep.targets)] > 0.5
        key = (ep.task, ep.support_size)
        if (*key, "universeg") not in cache:
            probs = [
                _model_probs(model, task, ep.targets, sup, settings.batch_size, dev) for sup in ep.supports
            ]
            cache[(*key, "universeg")] = _metric_rows(probs[0] > settings.threshold, ref)
            if ep.ensemble > 1:
                mean = torch.stack(probs).mean(0)
                cache[(*key, "universeg_ensemble")] = _metric_rows(mean > settings.threshold, ref)
        methods = [("universeg", 1)]
        if ep.ensemble > 1:
            methods.append(("universeg_ensemble", ep.ensemble))
        elif _wants_ensemble(settings, ep.requested_support):
            # the whole pool is the support set: every member would be the same set
            cache.setdefault((*key, "universeg_ensemble"), cache[(*key, "universeg")])
            methods.append(("universeg_ensemble", 1))
        if settings.runs_baseline(ep.requested_support):
            if (*key, "unet") not in cache:
                net = train_baseline(
                    task.images[list(ep.supports[0])],
                    task.masks[list(ep.supports[0])],
                    settings.baseline_config,
                    seed=task_seed(settings.seed, ep.task, ep.support_size) % (2**31),
                    device=dev,
                )
                probs = predict_baseline(net, task.images[list(ep.targets)], settings.batch_size)
                cache[(*key, "unet")] = _metric_rows(probs > settings.threshold, ref)
            methods.append(("unet", 1))
        for method, n_ens in methods:
            rows = cache[(*key, method)]
            for t_idx, row in zip(ep.targets, rows):
                records.append(
                    {
                        "task": ep.task,
                        "dataset": ep.dataset,
                        "method": method,
                        "requested_support": ep.requested_support,
                        "support_size": ep.support_size,
                        "ensemble": n_ens,
                        "target": t_idx,
                        "stem": task.stems[t_idx] if task.stems else str(t_idx),
                        **row,
                    }
                )
        log.info(
            "%s S=%d: mean dice %s",
            ep.task,
            ep.support_size,
            ", ".join(f"{m} {sum(r['dice'] for r in cache[(*key, m)]) / len(ep.targets):.4f}" for m, _ in methods),
        )
    bar.close()
    return EvaluationResult(records, settings, image_size, dict(info or {}))

