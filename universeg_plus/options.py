"""The options of one prediction, checked once into a frozen object.

:class:`PredictOptions` is what :meth:`~universeg_plus.predictor.Predictor.predict` (and the CLI,
the demo, the evaluation) hand down to the inferers and the engine. It is validated when built (the
public boundary); everything below trusts it. :meth:`PredictOptions.subsets` resolves the support
draw against one support set, the only check that needs the set.

To add an option (e.g. a number of sampled masks): add a field with its default, check it in
``__post_init__``, and read it where it is used (an inferer or :mod:`universeg_plus.inference`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .io.inputs import as_count
from .methods.session import check_method
from .support import SupportSet

__all__ = ["PredictOptions"]


@dataclass(frozen=True)
class PredictOptions:
    """How one prediction is made (whatever covers the image).

    Attributes:
        threshold: Foreground probability cut-off in (0, 1).
        ensemble: Number of support subsets whose probabilities are averaged (an int, not a bool).
        support_size: Examples per subset (``None``: all of them, or half of the set when ensembling).
        flips: Also predict on horizontally/vertically flipped inputs and average.
        seed: Seed of the subset draw (and of the sampling plan and the trained methods).
        samples: K sampled masks (1: one plain prediction); K > 1 draws its own support subsets and
            augmentations (:mod:`universeg_plus.uncertainty`), so it needs ``ensemble=1``.
        method: ``"incontext"`` (default), ``"ensemble"``, ``"adapt"``, ``"unet"``, ``"adapt+unet"`` or
            ``"auto"`` (:mod:`universeg_plus.methods`, ``docs/methods.md``); ``ensemble``,
            ``support_size``, ``flips`` and ``samples`` apply to ``"incontext"`` only.
        time_budget_s: Seconds ``"auto"`` may spend choosing and fitting, per label (``None``: no limit).

    Raises:
        TypeError / ValueError: an option of the wrong type or out of range (named, with the range).
    """

    threshold: float = 0.5
    ensemble: int = 1
    support_size: int | None = None
    flips: bool = False
    seed: int = 0
    samples: int = 1
    method: str = "incontext"
    time_budget_s: float | None = None

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, numbers.Real):
            raise TypeError(f"threshold must be a number in (0, 1), got {t!r} ({type(t).__name__})")
        if not 0.0 < float(t) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {t}")
        ensemble = as_count(self.ensemble, "ensemble", 1, note=" (the number of support subsets averaged)")
        size = None if self.support_size is None else as_count(self.support_size, "support_size", 1)
        if not isinstance(self.flips, (bool, np.bool_)):
            raise TypeError(f"flips must be True or False, got {self.flips!r} ({type(self.flips).__name__})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {self.seed!r} ({type(self.seed).__name__})")
        samples = as_count(self.samples, "samples", 1, note=" (the number of sampled masks)")
        if samples > 1 and ensemble > 1:
            raise ValueError(
                f"samples={samples} draws its own support subsets: use it with ensemble=1 (got ensemble={ensemble})"
            )
        method, budget = check_method(self.method, self.time_budget_s)
        if method != "incontext" and (ensemble != 1 or size is not None or self.flips or samples > 1):
            raise ValueError(
                f"ensemble, support_size, flips and samples apply to method='incontext', not {method!r}"
            )
        for name, value in (("threshold", float(t)), ("ensemble", ensemble), ("support_size", size),
                            ("flips", bool(self.flips)), ("seed", int(self.seed)), ("samples", samples),
                            ("method", method), ("time_budget_s", budget)):
            object.__setattr__(self, name, value)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> PredictOptions:
        """Options from keyword arguments; an unknown keyword is a TypeError naming the valid ones."""
        allowed = {f.name for f in fields(cls)}
        unknown = set(kwargs) - allowed
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; valid: {sorted(allowed)}")
        return cls(**kwargs)

    def subsets(self, support: SupportSet, fixed_support: int | None = None) -> list[list[int]]:
        """The support subsets to average: lists of example indices into ``support``.

        Args:
            support: The support set.
            fixed_support: A compiled model's fixed support size (subsets must be multiples of it).

        Raises:
            ValueError: ``support_size`` larger than the set, or not fitting a compiled model.
        """
        n = len(support)
        if self.support_size is not None:
            if self.support_size > n:
                raise ValueError(
                    f"support_size must be an integer in 1..{n} (the support set size), got {self.support_size}"
                )
            k = self.support_size
            if fixed_support and k % fixed_support:
                raise ValueError(
                    f"the compiled model takes exactly {fixed_support} support examples per pass; "
                    f"support_size must be a multiple of it, got {k}"
                )
        else:
            k = n if self.ensemble == 1 else max(1, math.ceil(n / 2))
            if fixed_support:
                k = fixed_support * max(1, k // fixed_support)
                if k > n:
                    raise ValueError(
                        f"the compiled model takes exactly {fixed_support} support examples per pass, but the "
                        f"support set holds {n}; give at least {fixed_support} examples or compile for any size"
                    )
        if self.ensemble == 1 and k == n:
            return [list(range(n))]
        return support.ensemble_indices(self.ensemble, k, self.seed)
