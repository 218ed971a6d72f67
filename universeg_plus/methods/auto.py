"""``method="auto"``: the support set chooses the method, by leave-one-out, within a time budget.

For a few held-out support examples (``folds``, chosen by a seeded draw), every candidate method is
fitted to the rest of the set and scored by Dice on the held-out example; the method with the best
mean Dice over the folds that every scored method saw wins, and is then fitted to the whole set.

Cost and budget: the in-context methods cost a forward pass per fold. A trained method costs one
training per fold plus the final training on the whole set; before training it, its cost is
estimated (from a 2-step timing of its training, later from its measured folds) and it is scored on
as many folds as ``time_budget_s`` still allows while leaving room for its final training; a method
that cannot get one fold is skipped (listed in :attr:`Choice.skipped`). ``adapt+unet`` is scored
for free from the ``adapt`` and ``unet`` of the same folds. With a single support example nothing
can be held out: the choice is ``adapt`` when the budget allows its training, else ``incontext``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..metrics import dice
from .fit import METHODS, Fitted, MethodSettings, fit_method

__all__ = ["DEFAULT_CANDIDATES", "Choice", "choose_method"]

log = logging.getLogger(__name__)

#: What ``auto`` chooses among by default (every method).
DEFAULT_CANDIDATES = METHODS


@dataclass
class Choice:
    """The outcome of the leave-one-out choice.

    Attributes:
        method: The chosen method.
        scores: Mean leave-one-out Dice per scored method, over the folds they all saw.
        folds: Held-out support indices those scores are the mean over.
        fold_dice: Dice per fold for every scored method (a trained method may have fewer folds).
        skipped: Candidates not scored, with the reason.
        seconds: Wall time of the choice (the leave-one-out fits and predictions).
    """

    method: str
    scores: dict[str, float] = field(default_factory=dict)
    folds: list[int] = field(default_factory=list)
    fold_dice: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _per_step_seconds(method: str, model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                      settings: MethodSettings) -> float:
    """Wall time of one training step of ``method`` (from a 3-step run, the first step as warm-up)."""
    probe = MethodSettings(
        adapt=settings.adapt.model_copy(update={"steps": 3}), unet=settings.unet.model_copy(update={"steps": 3})
    )
    t0 = time.perf_counter()
    fit_method(method, model, images, masks, probe)
    return (time.perf_counter() - t0) / 3


def _steps(method: str, settings: MethodSettings) -> int:
    return settings.adapt.steps if method == "adapt" else settings.unet.steps


def choose_method(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    time_budget_s: float | None = None,
    folds: int = 4,
    settings: MethodSettings | None = None,
    seed: int = 0,
) -> Choice:
    """Choose the method for the support set ``images, masks`` by leave-one-out Dice.

    Args:
        model: The in-context network.
        images: ``(S, 1, H, W)`` float in [0, 1] at the model's input size.
        masks: ``(S, 1, H, W)`` float in {0, 1}.
        candidates: Methods to choose among (a subset of :data:`~universeg_plus.methods.fit.METHODS`).
        time_budget_s: Seconds for the choice *and* the final fit of the chosen method (``None``:
            no limit, every candidate on every fold).
        folds: Held-out examples (at most ``S``).
        settings: Training settings of the trained methods.
        seed: Seeds the folds and the training.

    Raises:
        ValueError: unknown candidates, ``folds < 1``, a budget that is not positive.
    """
    bad = [c for c in candidates if c not in METHODS]
    if bad or not candidates:
        raise ValueError(f"candidates must be a non-empty subset of {', '.join(METHODS)}, got {list(candidates)}")
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be positive or None, got {time_budget_s}")
    cfg = settings or MethodSettings()
    start = time.perf_counter()
    budget = math.inf if time_budget_s is None else float(time_budget_s)
    n = images.shape[0]
    trained = [c for c in ("adapt", "unet") if c in candidates or ("adapt+unet" in candidates)]
    if not isinstance(model, nn.Module):
        trained = [c for c in trained if c != "adapt"]
    per_step = {m: _per_step_seconds(m, model, images, masks, cfg) for m in trained} if budget < math.inf else {}

    def cost(m: str) -> float:  # estimated seconds of one training of m
        return per_step.get(m, 0.0) * _steps(m, cfg)

    if n < 2:
        fallback = "adapt" if "adapt" in candidates and "adapt" in trained and cost("adapt") <= budget else "incontext"
        return Choice(fallback, skipped={c: "one support example: nothing to hold out" for c in candidates},
                      seconds=time.perf_counter() - start)

    g = torch.Generator().manual_seed(seed)
    held = torch.randperm(n, generator=g)[: min(folds, n)].tolist()
    fold_dice: dict[str, list[float]] = {}
    skipped: dict[str, str] = {}

    def score(m: str, fitted: Fitted, i: int) -> None:
        p = fitted(images[i : i + 1])[0, 0] > 0.5
        fold_dice.setdefault(m, []).append(float(dice(p, masks[i, 0] > 0.5)))

    rest = [[j for j in range(n) if j != i] for i in held]
    for m in ("incontext", "ensemble"):
        if m in candidates:
            for i, keep in zip(held, rest):
                score(m, fit_method(m, model, images[keep], masks[keep], cfg, seed=seed), i)
    # the trained methods: as many folds as the budget allows, leaving room for the final training
    fitted_folds: list[dict[str, Fitted]] = [{} for _ in held]
    for m in trained:
        for f, (i, keep) in enumerate(zip(held, rest)):
            elapsed = time.perf_counter() - start
            if elapsed + 2 * cost(m) > budget:  # this fold and the final training
                break
            t0 = time.perf_counter()
            fitted_folds[f][m] = fit_method(m, model, images[keep], masks[keep], cfg, seed=seed)
            per_step[m] = (time.perf_counter() - t0) / max(1, _steps(m, cfg))
            if m in candidates:
                score(m, fitted_folds[f][m], i)
        if not any(m in ff for ff in fitted_folds):
            skipped[m] = f"its training (~{cost(m):.0f} s) does not fit in the time budget"
    if "adapt+unet" in candidates:
        for f, i in enumerate(held):
            if "adapt" in fitted_folds[f] and "unet" in fitted_folds[f]:
                score("adapt+unet", fit_method("adapt+unet", model, images, masks, cfg, fitted=fitted_folds[f]), i)
        if "adapt+unet" not in fold_dice:
            skipped["adapt+unet"] = "adapt and unet were not both trained within the time budget"
    skipped.update({m: skipped.get(m, "not available for this model") for m in candidates
                    if m not in fold_dice and m not in skipped})
    if not fold_dice:  # nothing could be scored within the budget: the cheapest candidate
        cheapest = min(candidates, key=METHODS.index)
        return Choice(cheapest, folds=[], skipped=skipped, seconds=time.perf_counter() - start)
    common = min(len(v) for v in fold_dice.values())
    scores = {m: sum(v[:common]) / common for m, v in fold_dice.items()}
    # the final fit must fit too: a combined method costs both trainings
    elapsed = time.perf_counter() - start
    final = {m: cost(m) if m in ("adapt", "unet") else cost("adapt") + cost("unet") if m == "adapt+unet" else 0.0
             for m in scores}
    affordable = {m: s for m, s in scores.items() if elapsed + final[m] <= budget}
    method = (max(affordable, key=lambda m: (affordable[m], -METHODS.index(m))) if affordable
              else min(scores, key=lambda m: (final[m], METHODS.index(m))))
    log.info("auto: %s (leave-one-out Dice %s over folds %s; skipped %s)", method,
             {m: round(s, 3) for m, s in scores.items()}, held[:common], skipped or "none")
    return Choice(method, scores, held[:common], fold_dice, skipped, time.perf_counter() - start)
