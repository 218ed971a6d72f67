"""The methods fitted to one support set, label by label: what ``Predictor.predict(method=...)`` keeps.

Training happens on the first prediction that needs it and is kept for the following ones (a
U-Net is trained once per label, not once per target); a new support set needs a new
:class:`MethodFits` (the Predictor makes one in ``set_support``).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .auto import DEFAULT_CANDIDATES, Choice, choose_method
from .fit import METHODS, Fitted, MethodSettings, fit_method

__all__ = ["CHOICES", "MethodEngine", "MethodFits", "check_method", "summarize_engines"]

log = logging.getLogger(__name__)

#: What ``method=`` accepts: every method, and ``auto`` (chosen by leave-one-out on the support set).
CHOICES = ("auto", *METHODS)


def check_method(method: object, time_budget_s: object = None) -> tuple[str, float | None]:
    """``method`` and ``time_budget_s`` checked (ValueError/TypeError naming what was expected)."""
    if not isinstance(method, str) or method not in CHOICES:
        raise ValueError(f"method must be one of {', '.join(CHOICES)}, got {method!r}")
    if time_budget_s is not None:
        if isinstance(time_budget_s, bool) or not isinstance(time_budget_s, (int, float)):
            raise TypeError(f"time_budget_s must be a number of seconds or None, got {time_budget_s!r}")
        if not float(time_budget_s) > 0:
            raise ValueError(f"time_budget_s must be positive, got {time_budget_s}")
        time_budget_s = float(time_budget_s)
    return method, time_budget_s


class MethodFits:
    """Fitted methods (and ``auto``'s choices) for one support set.

    Args:
        model: The in-context network.
        settings: Training settings of the trained methods.
        seed: Seeds every training and choice.
        folds: Held-out support examples of ``auto``'s leave-one-out.
    """

    def __init__(self, model: nn.Module, settings: MethodSettings | None = None, seed: int = 0, folds: int = 4) -> None:
        self.model = model
        self.given = settings
        self.settings = settings or MethodSettings()
        self.seed = seed
        self.folds = folds
        self.fitted: dict[int, dict[str, Fitted]] = {}
        self.choices: dict[tuple[int, float | None], Choice] = {}

    def choose(self, label: int, images: torch.Tensor, masks: torch.Tensor, time_budget_s: float | None) -> Choice:
        """``auto``'s choice for ``label`` (made once per label and budget)."""
        key = (label, time_budget_s)
        if key not in self.choices:
            self.choices[key] = choose_method(self.model, images, masks, DEFAULT_CANDIDATES, time_budget_s,
                                              self.folds, self.settings, self.seed)
        return self.choices[key]

    def probabilities(
        self,
        label: int,
        images: torch.Tensor,
        masks: torch.Tensor,
        targets: torch.Tensor,
        method: str,
        time_budget_s: float | None = None,
        fitted: dict[str, Fitted] | None = None,
    ) -> tuple[torch.Tensor, Choice | None]:
        """Foreground probabilities ``(N, 1, H, W)`` of ``label`` for ``targets`` with ``method``.

        Args:
            label: The label's value (keys the cache).
            images: ``(S, 1, H, W)`` support images in [0, 1] at the model's input size.
            masks: ``(S, 1, H, W)`` binary masks of ``label``.
            targets: ``(N, 1, H, W)`` in [0, 1], prepared like the support images.
            method: One of :data:`CHOICES`.
            time_budget_s: ``auto``'s budget (the choice and the final training).
            fitted: Methods already fitted to this label elsewhere (e.g. the Predictor's adapted copy).

        Returns:
            The probabilities, and ``auto``'s :class:`~universeg_plus.methods.auto.Choice` (else ``None``).
        """
        choice = self.choose(label, images, masks, time_budget_s) if method == "auto" else None
        name = choice.method if choice is not None else method
        done = self.fitted.setdefault(label, {})
        for k, v in (fitted or {}).items():
            done.setdefault(k, v)
        if name not in done:
            done[name] = fit_method(name, self.model, images, masks, self.settings, seed=self.seed, fitted=done)
            log.info("label %d: %s fitted in %.1f s", label, name, done[name].seconds)
        return done[name](targets), choice

    def engine(self, label: int, method: str, time_budget_s: float | None = None) -> MethodEngine:
        """An engine-like object for one label: an inferer's ``engine.probabilities(x, images, masks, ...)``
        then runs ``method`` (fitted to ``images, masks`` on first use) instead of the network."""
        return MethodEngine(self, label, method, time_budget_s)


class MethodEngine:
    """What the Predictor hands the :class:`~universeg_plus.inferers.Resize` inferer for ``method != "incontext"``.

    Attributes:
        used: The method that gave the maps (``auto``: the chosen one), after the first call.
        scores: ``auto``'s leave-one-out Dice per method (else empty).
    """

    def __init__(self, fits: MethodFits, label: int, method: str, time_budget_s: float | None) -> None:
        self.fits, self.label, self.method, self.budget = fits, label, method, time_budget_s
        self.used = method
        self.scores: dict[str, float] = {}

    def probabilities(self, x: torch.Tensor, images: torch.Tensor, masks: torch.Tensor, *_: object) -> torch.Tensor:
        """``(N, H, W)`` foreground probabilities of targets ``x (N, 1, H, W)`` given the label's support."""
        p, choice = self.fits.probabilities(self.label, images, masks, x, self.method, self.budget)
        if choice is not None:
            self.used, self.scores = choice.method, dict(choice.scores)
        return p[:, 0]


def summarize_engines(engines: dict[int, MethodEngine]) -> tuple[str, dict[str, float]]:
    """The method used and the scores over labels: ``"unet"`` / ``{"adapt": 0.8, ...}`` for one label,
    ``"1:unet, 2:adapt"`` (when labels chose differently) / ``{"2:adapt": 0.8, ...}`` for several."""
    used = {c: e.used for c, e in engines.items()}
    first = next(iter(used.values()))
    name = first if len(set(used.values())) == 1 else ", ".join(f"{c}:{m}" for c, m in used.items())
    several = len(engines) > 1
    scores = {(f"{c}:{m}" if several else m): v for c, e in engines.items() for m, v in e.scores.items()}
    return name, scores
