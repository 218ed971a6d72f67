"""Run the held-out protocol through the user's path: UniverSeg (alone, ensembled, adapted) and the U-Net.

    from universeg_plus.evaluation import EvalSettings, evaluate, native_tasks
    tasks = native_tasks(load_task_root(root, (128, 128), include=datasets), root)
    result = evaluate(model, tasks, EvalSettings(support_sizes=(1, 4, 16, 64), ensemble=5, baseline=True))
    result.records  # one dict per (task, S, method, target): dice, iou, sensitivity, specificity, hd95
    result.timings  # one dict per (task, S, method): wall_s, the time that method took for the targets

Every method sees the same inputs a :class:`~universeg_plus.predictor.Predictor` user gets:

* UniverSeg: ``SupportSet.from_arrays(support images, support masks)`` (the io.inputs rules) and
  ``Predictor.predict_many(target images)``, probabilities at each target's original size;
* ensemble: the mean of those probabilities over the protocol's support sets (the Predictor's own
  ensembling averages before its linear upsampling, which gives the same map);
* UniverSeg + adapt: ``Predictor.adapt()`` on the same support set (a copy fine-tuned by
  :func:`~universeg_plus.adapt.adapt_model`), then ``predict_many``, then ``reset()``;
* UniverSeg + adapt, tiled: ``Predictor.set_support(images, masks)`` with the same pairs at their own
  size, ``adapt(inferer=Tiles())`` (windows at native scale,
  :func:`~universeg_plus.adapt.adapt_on_windows`), then ``predict_many(targets, inferer=Tiles())``;
* U-Net: trained on the prepared support tensors, applied to the prepared targets, its model-size
  probabilities upsampled to each target's size by the Predictor's rule
  (:func:`~universeg_plus.evaluation.native.to_original_size`).

Metrics are computed per target at its original size against its original mask (HD95 in native
pixels). ``EvalTask`` s from :func:`~universeg_plus.evaluation.native.native_tasks` hold the files'
images; ``BinaryTask`` s are evaluated at their stored size (as if those tensors were the files).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import metrics
from ..adapt import AdaptConfig, in_context_probabilities
from ..data.tasks import BinaryTask
from ..io.inputs import prepare_image
from ..inferers import Tiles
from ..predictor import Predictor
from ..support import SupportSet
from ..supervised import BaselineConfig, predict_baseline, train_baseline
from .native import EvalTask, as_eval_tasks, to_original_size
from .protocol import DEFAULT_SUPPORT_SIZES, Episode, make_episodes, task_seed

__all__ = ["METHODS", "EvalSettings", "EvaluationResult", "evaluate"]

log = logging.getLogger(__name__)

#: Method names in the records, in report order: the model with one support set, with an ensemble
#: of support sets, adapted to the support set, adapted and un-adapted averaged, adapted on native-scale
#: windows and predicted tiled, the U-Net, and the U-Net given UniverSeg's probabilities as a second
#: input channel; ``universeg_colour_*``: the model with the support set's colour projection
#: (``Predictor.set_support(..., colour=...)``, :mod:`universeg_plus.colour`).
METHODS = (
    "universeg", "universeg_colour_fisher", "universeg_colour_auto", "universeg_ensemble", "universeg_adapt",
    "universeg_adapt_mix", "universeg_adapt_tiled", "unet", "unet_prior",
    "adapt_unet", "auto", "unet_equal_time",
)
#: The record name of each :mod:`universeg_plus.methods` method.
_RECORD_NAMES = {"incontext": "universeg", "adapt": "universeg_adapt", "unet": "unet", "adapt+unet": "adapt_unet"}


class EvalSettings(BaseModel):
    """What to evaluate.

    Attributes:
        support_sizes: Requested S values (capped per task by its support pool).
        num_targets: Targets per task (see :func:`~universeg_plus.evaluation.protocol.make_episodes`).
        max_target_fraction: At most this fraction of a task's pairs become targets.
        ensemble: Support sets averaged per prediction for the ensemble rows (1: no ensemble rows).
        ensemble_max_support: Ensemble rows only for S up to this (``None``: all S).
        threshold: Foreground when the (averaged) probability exceeds it.
        batch_size: Targets per U-Net forward pass.
        seed: Protocol seed (targets, support sets, baseline training, adaptation).
        baseline: Also train and evaluate the per-task U-Net.
        baseline_config: Its fixed budget.
        baseline_support_sizes: Requested S values the U-Net is trained for (``None``: all of
            ``support_sizes``); it trains one network per (task, S), the costly part of a run.
        baseline_prior: Also train the U-Net with UniverSeg's probabilities as a second input
            channel (leave-one-out predictions for the support images, the model's predictions with
            the full support set for the targets), same budget; rows ``unet_prior``.
        adapt: Also adapt the model to each support set (:func:`~universeg_plus.adapt.adapt_model`)
            with these settings (``None``: no adaptation rows).
        adapt_support_sizes: Requested S values adapted for (``None``: all of ``support_sizes``).
        adapt_mix: Also score the mean of the adapted and un-adapted probabilities.
        adapt_tiled: Also adapt on windows at native scale and predict tiled (the
            :class:`~universeg_plus.inferers.Tiles` inferer, default geometry), with the settings of
            ``adapt``: rows ``universeg_adapt_tiled``, for the tasks' thin and small structures.
        adapt_unet: Also score the mean of the adapted model's and the U-Net's probabilities (rows
            ``adapt_unet``, where both run; wall time: both).
        auto: Also score ``method="auto"`` (:func:`universeg_plus.methods.choose_method`: leave-one-out
            on the support set among every method, with the adaptation and U-Net settings above;
            rows ``auto``, wall time: the choice and the chosen method's fit and prediction).
        auto_folds: Held-out support examples of ``auto``'s leave-one-out.
        auto_budget_s: ``auto``'s time budget (``None``: none).
        unet_equal_time: Also train the U-Net with as many steps as fit in the wall time of the best
            other method of the episode (by mean Dice; never fewer than ``baseline_config.steps``,
            at most 10x): rows ``unet_equal_time``, so that no claim rests on a starved baseline.
        colour: Colour projections scored beside the plain (luma) in-context rows, each fitted on
            the support set and applied to the targets as ``Predictor.set_support(images, masks,
            colour=...)`` does: ``"fisher"`` and/or ``"auto"`` (rows ``universeg_colour_<name>``,
            wall time: the fit, the leave-one-out choice and the prediction). On a grey task there is
            no colour to project: the rows are the ``universeg`` maps (and its time).
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
    baseline_prior: bool = False
    adapt: AdaptConfig | None = None
    adapt_support_sizes: tuple[int, ...] | None = None
    adapt_mix: bool = False
    adapt_tiled: bool = False
    adapt_unet: bool = False
    auto: bool = False
    auto_folds: int = Field(4, ge=1)
    auto_budget_s: float | None = Field(None, gt=0)
    unet_equal_time: bool = False
    colour: tuple[Literal["fisher", "auto"], ...] = ()

    @field_validator("colour")
    @classmethod
    def _colours(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v))

    @field_validator("support_sizes")
    @classmethod
    def _sizes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(s < 1 for s in v):
            raise ValueError(f"support_sizes must be a non-empty list of integers >= 1, got {v}")
        return tuple(dict.fromkeys(v))

    @model_validator(mode="after")
    def _method_sizes(self) -> EvalSettings:
        for name in ("baseline_support_sizes", "adapt_support_sizes"):
            extra = sorted(set(getattr(self, name) or ()) - set(self.support_sizes))
            if extra:
                raise ValueError(f"{name} {extra} are not in support_sizes {list(self.support_sizes)}")
        if self.adapt_mix and self.adapt is None:
            raise ValueError("adapt_mix needs adapt settings (the adapted predictions to mix)")
        if self.adapt_tiled and self.adapt is None:
            raise ValueError("adapt_tiled needs adapt settings (steps, lr... of the adaptation on windows)")
        if self.baseline_prior and not self.baseline:
            raise ValueError("baseline_prior needs baseline=True (it is a variant of the U-Net baseline)")
        if self.unet_equal_time and not self.baseline:
            raise ValueError("unet_equal_time needs baseline=True (it is a variant of the U-Net baseline)")
        if self.adapt_unet and (self.adapt is None or not self.baseline):
            raise ValueError("adapt_unet needs adapt settings and baseline=True (the two maps it averages)")
        return self

    def runs_auto(self, requested_support: int) -> bool:
        """Whether ``auto`` is scored for this requested S (where the U-Net is)."""
        return self.auto and (self.baseline_support_sizes is None or requested_support in self.baseline_support_sizes)

    def runs_baseline(self, requested_support: int) -> bool:
        """Whether the U-Net is trained and scored for this requested S."""
        sizes = self.baseline_support_sizes
        return self.baseline and (sizes is None or requested_support in sizes)

    def runs_adapt(self, requested_support: int) -> bool:
        """Whether the model is adapted and scored for this requested S."""
        sizes = self.adapt_support_sizes
        return self.adapt is not None and self.adapt.steps > 0 and (sizes is None or requested_support in sizes)


@dataclass
class EvaluationResult:
    """Per-target records, per-method wall times, and what produced them.

    Attributes:
        records: One dict per (task, requested S, method, target) with keys ``task, dataset,
            method, requested_support, support_size, ensemble, target, stem`` and the metrics
            ``dice, iou, sensitivity, specificity, hd95`` (hd95 in pixels at the evaluation size).
        settings: The settings used.
        resolution: Where the metrics were computed: ``"native"`` (each image's own size) or
            ``"stored HxW"``.
        info: Free-form description (model name, weights, device) carried into reports.
        timings: One dict per (task, requested S, method): ``task, dataset, method,
            requested_support, support_size, wall_s`` (seconds that method spent on the task's
            targets, preparing the support set, training or adapting included).
        probabilities: With ``keep_probabilities``: ``(task, actual S, method)`` -> one ``(H, W)``
            float32 map per target (in the episode's target order) at the target's evaluation size.
    """

    records: list[dict[str, Any]]
    settings: EvalSettings
    resolution: str
    info: dict[str, Any] = field(default_factory=dict)
    timings: list[dict[str, Any]] = field(default_factory=list)
    probabilities: dict[tuple[str, int, str], list[np.ndarray]] = field(default_factory=dict)


def _metric_rows(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """One metrics dict per target: ``preds[i], refs[i]`` bool ``(H_i, W_i)``."""
    fns = {
        "dice": metrics.dice,
        "iou": metrics.iou,
        "sensitivity": metrics.sensitivity,
        "specificity": metrics.specificity,
        "hd95": metrics.hd95,
    }
    return [{k: float(fn(p, r)) for k, fn in fns.items()} for p, r in zip(preds, refs)]


def _wants_ensemble(settings: EvalSettings, requested_support: int) -> bool:
    cap = settings.ensemble_max_support
    return settings.ensemble > 1 and (cap is None or requested_support <= cap)


def support_set(task: EvalTask, indices: Sequence[int], size: Sequence[int]) -> SupportSet:
    """The support set a user builds from these pairs' files: ``SupportSet.from_arrays`` at ``size``."""
    idx = list(indices)
    names = [task.stems[i] for i in idx] if task.stems else None
    return SupportSet.from_arrays([task.images[i] for i in idx], [task.masks[i] for i in idx], size, names=names)


def predictor_probabilities(predictor: Predictor, support: SupportSet, targets: Sequence[Any]) -> list[np.ndarray]:
    """``Predictor.set_support(support).predict_many(targets)``: ``(H, W)`` float32 maps at each target's size."""
    return [p.probabilities for p in predictor.set_support(support).predict_many(list(targets))]


def colour_probabilities(
    predictor: Predictor, task: EvalTask, indices: Sequence[int], targets: Sequence[Any], colour: str
) -> list[np.ndarray]:
    """``Predictor.set_support(images, masks, colour=colour).predict_many(targets)`` with the pairs at
    ``indices`` as read (RGB kept): ``(H, W)`` float32 maps at each target's size."""
    idx = list(indices)
    predictor.set_support([task.images[i] for i in idx], [task.masks[i] for i in idx], colour=colour)
    return [p.probabilities for p in predictor.predict_many(list(targets))]


def _prepared(images: Sequence[Any], size: tuple[int, int]) -> torch.Tensor:
    """Targets prepared as the Predictor prepares them: ``(T, 1, h, w)`` in [0, 1]."""
    return torch.stack([prepare_image(x, size, where=f"target #{i}") for i, x in enumerate(images)])


class _Clock:
    """Wall time per method; a method's total may include another's (e.g. the ensemble's first member)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def run(self, method: str, fn: Callable[[], Any], *also: str) -> Any:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        for m in (method, *also):
            self.spent[m] = self.spent.get(m, 0.0) + dt
        return out


def _episode_probabilities(
    model: Any,
    predictor: Predictor,
    task: EvalTask,
    ep: Episode,
    settings: EvalSettings,
    device: torch.device,
    progress: bool,
) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Every method's probability maps for the episode's targets, and the seconds each took."""
    size = predictor.input_size
    targets = [task.images[t] for t in ep.targets]
    clock = _Clock()
    probs: dict[str, list[np.ndarray]] = {}
    with_ens = ep.ensemble > 1
    wants_ens = _wants_ensemble(settings, ep.requested_support)
    ens_tag = ("universeg_ensemble",) if wants_ens else ()
    support = clock.run("universeg", lambda: support_set(task, ep.supports[0], size), *ens_tag)
    probs["universeg"] = clock.run(
        "universeg", lambda: predictor_probabilities(predictor, support, targets), *ens_tag
    )
    for colour in settings.colour:
        row = f"universeg_colour_{colour}"
        if any(task.images[i].ndim != 3 for i in ep.supports[0]):  # grey: nothing to project
            probs[row] = probs["universeg"]
            clock.spent[row] = clock.spent["universeg"]
            continue
        probs[row] = clock.run(row, lambda c=colour: colour_probabilities(predictor, task, ep.supports[0], targets, c))
    if with_ens:
        members = [probs["universeg"]]
        for sup in ep.supports[1:]:
            members.append(
                clock.run(
                    "universeg_ensemble",
                    lambda sup=sup: predictor_probabilities(predictor, support_set(task, sup, size), targets),
                )
            )
        probs["universeg_ensemble"] = [np.mean(np.stack(m), axis=0) for m in zip(*members)]
    elif wants_ens:  # the whole pool is the support set: every member would be the same set
        probs["universeg_ensemble"] = probs["universeg"]
    seed = task_seed(settings.seed, ep.task, ep.support_size) % (2**31)
    if settings.runs_adapt(ep.requested_support):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"adaptation needs a torch module, got {type(model).__name__} (a compiled model?)")
        mix = ("universeg_adapt_mix",) if settings.adapt_mix else ()

        def adapted_probs() -> list[np.ndarray]:  # exactly what a Predictor user's adapt() gives
            predictor.set_support(support).adapt(seed=seed, progress=progress, **settings.adapt.model_dump())
            try:
                return [p.probabilities for p in predictor.predict_many(list(targets))]
            finally:
                predictor.reset()

        probs["universeg_adapt"] = clock.run("universeg_adapt", adapted_probs, *mix)
        if settings.adapt_mix:
            clock.spent["universeg_adapt_mix"] += clock.spent["universeg"]
            probs["universeg_adapt_mix"] = [(a + b) / 2 for a, b in zip(probs["universeg_adapt"], probs["universeg"])]
        if settings.adapt_tiled:
            probs["universeg_adapt_tiled"] = clock.run(
                "universeg_adapt_tiled", lambda: _adapted_tiled(predictor, task, ep, targets, settings, seed, progress)
            )
    if settings.runs_baseline(ep.requested_support):

        def unet_probs() -> list[np.ndarray]:
            sup = support_set(task, ep.supports[0], size).binary()
            net = train_baseline(
                sup.images, sup.masks, settings.baseline_config, seed=seed, device=device, progress=progress
            )
            out = predict_baseline(net, _prepared(targets, size), settings.batch_size)
            return to_original_size(out, [task.masks[t].shape for t in ep.targets])

        probs["unet"] = clock.run("unet", unet_probs)
        if settings.baseline_prior:

            def unet_prior_probs() -> list[np.ndarray]:
                sup = support_set(task, ep.supports[0], size).binary()
                x = _prepared(targets, size)
                # leave-one-out predictions for the support images (with one example, its own)
                loo = in_context_probabilities(model, sup.images, sup.images, sup.masks, leave_out=len(sup) > 1)
                net = train_baseline(
                    sup.images, sup.masks, settings.baseline_config, seed=seed, device=device, progress=progress,
                    priors=loo,
                )
                prior = in_context_probabilities(model, x, sup.images, sup.masks)
                out = predict_baseline(net, x, settings.batch_size, priors=prior)
                return to_original_size(out, [task.masks[t].shape for t in ep.targets])

            probs["unet_prior"] = clock.run("unet_prior", unet_prior_probs)
    if settings.adapt_unet and "universeg_adapt" in probs and "unet" in probs:
        probs["adapt_unet"] = [(a + b) / 2 for a, b in zip(probs["universeg_adapt"], probs["unet"])]
        clock.spent["adapt_unet"] = clock.spent["universeg_adapt"] + clock.spent["unet"]
    if settings.runs_auto(ep.requested_support):
        _auto(model, task, ep, settings, size, seed, probs, clock)
    if settings.unet_equal_time and "unet" in probs:
        _unet_equal_time(task, ep, settings, size, seed, device, progress, probs, clock)
    return probs, clock.spent


def _adapted_tiled(predictor: Predictor, task: EvalTask, ep: Episode, targets: list[Any], settings: EvalSettings,
                   seed: int, progress: bool) -> list[np.ndarray]:
    """``universeg_adapt_tiled``: the support pairs at their own size, adapted on native-scale windows and
    predicted tiled, exactly as a Predictor user does it."""
    tiles = Tiles()
    idx = ep.supports[0]
    predictor.set_support([task.images[i] for i in idx], [task.masks[i].astype(np.uint8) for i in idx])
    predictor.adapt(seed=seed, progress=progress, inferer=tiles, **settings.adapt.model_dump())
    try:
        return [p.probabilities for p in predictor.predict_many(list(targets), inferer=tiles)]
    finally:
        predictor.reset()


def _mean_dice(task: EvalTask, ep: Episode, maps: list[np.ndarray], threshold: float) -> float:
    return float(np.mean([metrics.dice(p > threshold, task.masks[t]) for p, t in zip(maps, ep.targets)]))


def _auto(model: Any, task: EvalTask, ep: Episode, settings: EvalSettings, size: tuple[int, int], seed: int,
          probs: dict[str, list[np.ndarray]], clock: _Clock) -> None:
    """``auto`` rows: the leave-one-out choice, then the chosen method's maps. Where the episode already
    scored that method with the same settings and seed, its maps and wall time are reused (the same
    computation); otherwise it is fitted here."""
    from ..methods import MethodFits, MethodSettings

    sup = support_set(task, ep.supports[0], size).binary()
    cfg = MethodSettings(adapt=settings.adapt or AdaptConfig(), unet=settings.baseline_config)
    fits = MethodFits(model, cfg, seed=seed, folds=settings.auto_folds)
    choice = clock.run("auto", lambda: fits.choose(1, sup.images, sup.masks, settings.auto_budget_s))
    same = _RECORD_NAMES.get(choice.method)
    if same in probs and (same != "universeg_adapt" or settings.adapt is not None):
        probs["auto"] = probs[same]
        clock.spent["auto"] += clock.spent[same]
    else:
        x = _prepared([task.images[t] for t in ep.targets], size)
        out = clock.run("auto", lambda: fits.probabilities(1, sup.images, sup.masks, x, choice.method)[0])
        probs["auto"] = to_original_size(out, [task.masks[t].shape for t in ep.targets])
    log.info("%s S=%d: auto chose %s (leave-one-out Dice %s)", ep.task, ep.support_size, choice.method,
             {m: round(v, 3) for m, v in choice.scores.items()})


def _unet_equal_time(task: EvalTask, ep: Episode, settings: EvalSettings, size: tuple[int, int], seed: int,
                     device: torch.device, progress: bool, probs: dict[str, list[np.ndarray]], clock: _Clock) -> None:
    """``unet_equal_time`` rows: the U-Net with its steps scaled to the best other method's wall time."""
    others = {m: _mean_dice(task, ep, ps, settings.threshold) for m, ps in probs.items() if not m.startswith("unet")}
    best = max(others, key=others.get)
    ratio = clock.spent[best] / max(clock.spent["unet"], 1e-9)
    steps = int(min(10.0, max(1.0, ratio)) * settings.baseline_config.steps)
    cfg = settings.baseline_config.model_copy(update={"steps": steps})

    def run() -> list[np.ndarray]:
        sup = support_set(task, ep.supports[0], size).binary()
        net = train_baseline(sup.images, sup.masks, cfg, seed=seed, device=device, progress=progress)
        out = predict_baseline(net, _prepared([task.images[t] for t in ep.targets], size), settings.batch_size)
        return to_original_size(out, [task.masks[t].shape for t in ep.targets])

    probs["unet_equal_time"] = clock.run("unet_equal_time", run)
    log.info("%s S=%d: U-Net at equal time: %d steps (%s took %.1f s)", ep.task, ep.support_size, steps, best,
             clock.spent[best])


def evaluate(
    model: Callable[..., torch.Tensor],
    tasks: Sequence[EvalTask | BinaryTask],
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    info: dict[str, Any] | None = None,
    keep_probabilities: bool = False,
) -> EvaluationResult:
    """Evaluate an in-context model (and optionally adaptation and the U-Net baseline) on held-out tasks.

    Args:
        model: A :class:`~universeg_plus.model.UniverSegPlus` or any callable with the model contract
            that :class:`~universeg_plus.predictor.Predictor` takes (e.g. a compiled model; not with
            adaptation).
        tasks: :class:`~universeg_plus.evaluation.native.EvalTask` s (the files at their own size,
            from :func:`~universeg_plus.evaluation.native.native_tasks`) or ``BinaryTask`` s
            (evaluated at their stored size); none may have been used to train ``model`` (see
            :func:`~universeg_plus.evaluation.holdout.check_held_out`).
        settings: Protocol and methods (default :class:`EvalSettings`).
        device: Where the model (and the baseline) run.
        progress: Show a tqdm bar over (task, S), and one per U-Net training / adaptation with its loss.
        info: Description carried into the result.
        keep_probabilities: Keep every method's probability maps in the result (memory: one float32
            map per target, method and S).

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        ValueError: no tasks, or no task with at least 2 pairs.
        TypeError: adaptation asked for a model that is not a torch module.
    """
    from tqdm.auto import tqdm

    settings = settings or EvalSettings()
    tasks = as_eval_tasks(tasks)
    if not tasks:
        raise ValueError("no tasks to evaluate")
    resolutions = sorted({t.resolution for t in tasks})
    dev = torch.device(device)
    # raw probabilities: masks are cut from them, and ensembles/mixes average them (a calibration
    # stored with the weights would change those averages, not what the protocol measures)
    predictor = Predictor(model, device=dev, calibration=None)
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
    timings: list[dict[str, Any]] = []
    kept: dict[tuple[str, int, str], list[np.ndarray]] = {}
    # (task, actual S) -> method -> per-target metric rows, and seconds; requested sizes capped to one S share it
    cache: dict[tuple[str, int], tuple[dict[str, list[dict[str, float]]], dict[str, float]]] = {}
    bar = tqdm(episodes, desc="evaluate", disable=not progress, unit="episode")
    for ep in bar:
        bar.set_postfix_str(f"{ep.task} S={ep.support_size}")
        task = by_name[ep.task]
        key = (ep.task, ep.support_size)
        if key not in cache:
            refs = [task.masks[t] for t in ep.targets]
            probs, spent = _episode_probabilities(model, predictor, task, ep, settings, dev, progress)
            rows = {m: _metric_rows([p > settings.threshold for p in ps], refs) for m, ps in probs.items()}
            if keep_probabilities:
                kept.update({(*key, m): ps for m, ps in probs.items()})
            cache[key] = rows, spent
        rows, spent = cache[key]
        methods = [("universeg", 1)] + [(f"universeg_colour_{c}", 1) for c in settings.colour]
        if "universeg_ensemble" in rows and _wants_ensemble(settings, ep.requested_support):
            methods.append(("universeg_ensemble", ep.ensemble))
        if settings.runs_adapt(ep.requested_support):
            methods.append(("universeg_adapt", 1))
            if settings.adapt_mix:
                methods.append(("universeg_adapt_mix", 1))
            if settings.adapt_tiled:
                methods.append(("universeg_adapt_tiled", 1))
        if settings.runs_baseline(ep.requested_support):
            methods.append(("unet", 1))
            if settings.baseline_prior:
                methods.append(("unet_prior", 1))
        methods += [(m, 1) for m in ("adapt_unet", "auto", "unet_equal_time") if m in rows]
        for method, n_ens in methods:
            for t_idx, row in zip(ep.targets, rows[method]):
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
            timings.append(
                {
                    "task": ep.task,
                    "dataset": ep.dataset,
                    "method": method,
                    "requested_support": ep.requested_support,
                    "support_size": ep.support_size,
                    "wall_s": spent[method],
                }
            )
        log.info(
            "%s S=%d: mean dice %s",
            ep.task,
            ep.support_size,
            ", ".join(
                f"{m} {sum(r['dice'] for r in rows[m]) / len(ep.targets):.4f} ({spent[m]:.1f} s)" for m, _ in methods
            ),
        )
    bar.close()
    return EvaluationResult(records, settings, " + ".join(resolutions), dict(info or {}), timings, kept)
