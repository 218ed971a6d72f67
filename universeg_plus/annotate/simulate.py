"""Replay a labelled dataset through an :class:`AnnotationSession`, the known masks playing the annotator.

The simulated annotator looks at each proposal and accepts the true mask: the edit cost is what a
person would have had to change (capped at 1.0: clear and draw). The first item has no support, so it
is drawn from scratch (cost 1.0): the replay starts from one labelled image.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import file_stem, list_image_files
from ..io.inputs import as_label_map, binary_from_255
from .edits import label_dice
from .session import AnnotationSession

__all__ = ["SimulatedItem", "simulate", "summarize", "truth_masks"]


@dataclass
class SimulatedItem:
    """One simulated answer.

    Attributes:
        step: 1, 2, ... in the order answered.
        name: The item.
        support: Accepted items the proposal came from.
        dice: Mean Dice of the proposal against the true mask (labels present in either).
        edit_cost: Edited pixels over the true foreground, capped at 1.0.
        edit_pixels: Edited pixels, capped at the foreground (what clearing and drawing costs).
        foreground: Foreground pixels of the true mask.
        source: ``none``, ``in-context`` or ``adapted``.
        propose_seconds: Time to the first (in-context) proposal.
        fast_dice: Dice of that first proposal (equals ``dice`` without adaptation).
    """

    step: int
    name: str
    support: int
    dice: float
    edit_cost: float
    edit_pixels: int
    foreground: int
    source: str
    propose_seconds: float
    fast_dice: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def truth_masks(truth: Any, names: Sequence[str]) -> dict[str, Any]:
    """True masks by item name from a folder (matched by file stem), a mapping, or a list in item order.

    Raises:
        ValueError: an item without a true mask (named).
    """
    if isinstance(truth, (str, os.PathLike)):
        if not Path(truth).is_dir():
            raise FileNotFoundError(f"--truth folder not found: {truth}")
        found: Mapping[str, Any] = {file_stem(p): p for p in list_image_files(truth)}
    elif isinstance(truth, Mapping):
        found = truth
    else:
        values = list(truth)
        if len(values) != len(names):
            raise ValueError(f"got {len(values)} true masks for {len(names)} items")
        found = dict(zip(names, values))
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{len(missing)} item(s) have no true mask, e.g. {missing[0]!r}")
    return {n: found[n] for n in names}


def _label_map(value: Any, name: str) -> np.ndarray:
    return binary_from_255([as_label_map(value, name, kind="true mask", max_labels=None)])[0]


def simulate(
    session: AnnotationSession, truth: Any, items: int | None = None, wait_refined: bool = True
) -> list[SimulatedItem]:
    """Answer up to ``items`` pending items of ``session`` with their true masks.

    Args:
        session: An open session (it may already hold answers: the replay continues it).
        truth: True label maps: a folder (by file stem), ``{name: mask or path}``, or a list in item order.
        items: Most items to answer (default: all pending).
        wait_refined: With adaptation on, wait for the adapted proposal of each item (deterministic).

    Returns:
        One :class:`SimulatedItem` per answer, in order.
    """
    masks = truth_masks(truth, [it.name for it in session.items])
    out: list[SimulatedItem] = []
    while items is None or len(out) < items:
        item = session.next_item()
        if item is None:
            break
        t = _label_map(masks[item.name], item.name)
        if t.shape != session.source.shape(item.index):
            shape = session.source.shape(item.index)
            raise ValueError(f"true mask of {item.name!r} is {t.shape} but the image is {shape}")
        t0 = time.perf_counter()
        fast = session.propose(item, refined=False)
        seconds = time.perf_counter() - t0
        proposal = fast
        if session.adapt_steps > 0 and wait_refined and fast.source != "none":
            proposal = session.propose(item, wait=True)
        rec = session.accept(t, item)
        fg = int(np.count_nonzero(t))
        out.append(SimulatedItem(
            step=rec.step or 0, name=item.name, support=proposal.support, dice=label_dice(proposal.mask, t),
            edit_cost=float(rec.edit_cost or 0.0), edit_pixels=min(int(rec.edit_pixels or 0), fg) if fg else
            int(rec.edit_pixels or 0), foreground=fg, source=proposal.source, propose_seconds=seconds,
            fast_dice=label_dice(fast.mask, t),
        ))
    return out


def summarize(records: Sequence[SimulatedItem], at: int = 8) -> dict[str, float]:
    """Figures of a replay, over the items proposed from at least one labelled item.

    Returns:
        ``items``; ``total_cost`` (edited pixels over all true foreground pixels: 1.0 = drawing all);
        ``mean_cost``; ``cost_at`` (the ``at``-th proposal's cost, NaN if fewer); ``mean_dice``;
        ``max_propose_seconds`` and ``median_propose_seconds``.
    """
    rows = [r for r in records if r.support > 0]
    if not rows:
        raise ValueError("no item was proposed from a labelled item: nothing to summarise")
    fg = sum(r.foreground for r in rows)
    secs = [r.propose_seconds for r in rows]
    return {
        "items": float(len(rows)),
        "total_cost": sum(r.edit_pixels for r in rows) / fg if fg else float("nan"),
        "mean_cost": float(np.mean([r.edit_cost for r in rows])),
        "cost_at": rows[at - 1].edit_cost if len(rows) >= at else float("nan"),
        "mean_dice": float(np.mean([r.dice for r in rows])),
        "max_propose_seconds": float(np.max(secs)),
        "median_propose_seconds": float(np.median(secs)),
    }
