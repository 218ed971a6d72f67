"""Proposals for the next item: at once from the plain in-context model, better when adaptation is ready.

After every accept the support set grows. :class:`Proposer` answers at once with the in-context
prediction from the new set (one forward pass, no training), and, with ``adapt_steps > 0``, fine-tunes
a copy of the model on the new set in a background thread (:meth:`universeg_plus.predictor.Predictor.adapt`);
once that copy is ready, proposals for that support set come from it. A copy adapted to an older set
is never used for a newer one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..predictor import Prediction, Predictor
from ..support import SupportSet
from .edits import entropy_score

__all__ = ["Proposal", "Proposer"]

log = logging.getLogger(__name__)


@dataclass
class Proposal:
    """A proposed label map for one item.

    Attributes:
        mask: ``(H, W)`` integer label map at the item's size.
        probabilities: ``(H, W)`` (one label) or ``(C, H, W)`` float32 in [0, 1].
        classes: Labels of the class axis of ``probabilities``.
        source: ``none`` (no labelled item yet: empty), ``in-context`` or ``adapted``.
        support: Items in the support set it came from.
        seconds: Time it took.
        colour: The projection that made the item grey (``"luma"``, ``"fisher"``, ...; docs/colour.md).
    """

    mask: np.ndarray
    probabilities: np.ndarray
    classes: list[int]
    source: str
    support: int
    seconds: float
    colour: str = "luma"


def _empty(shape: tuple[int, int]) -> Proposal:
    return Proposal(np.zeros(shape, np.uint8), np.zeros(shape, np.float32), [1], "none", 0, 0.0)


def _from_prediction(pred: Prediction, source: str, support: int, t0: float) -> Proposal:
    return Proposal(pred.mask, pred.probabilities, list(pred.classes), source, support, time.perf_counter() - t0,
                    pred.colour)


class Proposer:
    """Keeps the in-context predictor on the current support set and refreshes an adapted one.

    Args:
        model: The network (an ``nn.Module`` or anything :class:`~universeg_plus.predictor.Predictor` takes).
        device: Torch device.
        adapt_steps: Adaptation steps per refresh; 0 turns adaptation off.
        background: Adapt in a background thread (``False``: :meth:`update` adapts before returning).
        seed: Seed of the adaptation.
        predict_options: Passed to ``Predictor.predict`` (``ensemble``, ``support_size``, ``flips``, ``threshold``).
    """

    def __init__(
        self,
        model: Any,
        device: Any = None,
        adapt_steps: int = 0,
        background: bool = True,
        seed: int = 0,
        **predict_options: Any,
    ) -> None:
        self.fast = Predictor(model, device=device)
        self.model = self.fast.model
        self.adapt_steps = int(adapt_steps)
        self.background = bool(background)
        self.seed = int(seed)
        self.options = predict_options
        self.version = 0  # bumped on every support change
        self._support: SupportSet | None = None
        self._adapted: tuple[int, Predictor] | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wanted: tuple[int, SupportSet] | None = None
        self._closed = False
        self.adapt_seconds: list[float] = []

    # -------------------------------------------------------------- support
    def update(self, support: SupportSet | None) -> None:
        """Use ``support`` (``None``: no labelled item yet) from now on; start refreshing the adapted copy."""
        with self._cond:
            self.version += 1
            self._support = support
            if support is not None:
                self.fast.set_support(support)
            self._adapted = None
            if support is None or self.adapt_steps <= 0:
                return
            self._wanted = (self.version, support)
            if not self.background:
                pass
            elif self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._worker, name="universeg-plus-adapt", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        if not self.background:
            self._adapt_wanted()

    def _adapt_wanted(self) -> None:
        with self._cond:
            if self._wanted is None:
                return
            version, support = self._wanted
            self._wanted = None
        t0 = time.perf_counter()
        predictor = Predictor(self.model, device=self.fast.device).set_support(support)
        predictor.adapt(steps=self.adapt_steps, seed=self.seed, progress=False)
        with self._cond:
            self.adapt_seconds.append(time.perf_counter() - t0)
            if version == self.version:
                self._adapted = (version, predictor)
                log.info("adapted proposal ready for %d support items (%.1f s)", len(support), time.perf_counter() - t0)
            self._cond.notify_all()

    def _worker(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                self._adapt_wanted()
            except Exception:  # a failed refresh must not stop annotating: the in-context proposal stays
                log.exception("adapting to the support set failed; proposals stay in-context")

    @property
    def refined_ready(self) -> bool:
        """Whether the adapted copy for the current support set is ready."""
        with self._cond:
            return self._adapted is not None and self._adapted[0] == self.version

    def wait_refined(self, timeout: float | None = None) -> bool:
        """Block until the adapted copy for the current support set is ready (``False`` on timeout or
        when adaptation is off)."""
        if self.adapt_steps <= 0 or self._support is None:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not (self._adapted is not None and self._adapted[0] == self.version):
                if self._wanted is None and (self._thread is None or not self._thread.is_alive()):
                    if self._adapted is None:
                        return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=0.2 if left is None else min(left, 0.2))
            return True

    # -------------------------------------------------------------- proposals
    def propose(self, image: np.ndarray, refined: bool = True) -> Proposal:
        """The proposal for ``image`` ``(H, W)``/``(H, W, 3)``: the adapted copy's when ready and
        ``refined``, else the in-context one; empty before any labelled item."""
        t0 = time.perf_counter()
        with self._cond:
            support = self._support
            adapted = self._adapted[1] if self._adapted is not None and self._adapted[0] == self.version else None
        if support is None:
            return _empty(tuple(np.asarray(image).shape[:2]))
        if refined and adapted is not None:
            return _from_prediction(adapted.predict(image, **self.options), "adapted", len(support), t0)
        return _from_prediction(self.fast.predict(image, **self.options), "in-context", len(support), t0)

    def uncertainty(
        self, images: list[np.ndarray], score: Callable[[np.ndarray], float] = entropy_score
    ) -> list[float]:
        """``score`` of the in-context probability map of each image (higher: more uncertain)."""
        if self._support is None:
            return [0.0] * len(images)
        return [score(p.probabilities) for p in self.fast.predict_many(images, **self.options)]

    def close(self) -> None:
        """Stop the background thread (an adaptation in progress finishes first, unused)."""
        with self._cond:
            self._closed = True
            self._wanted = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
