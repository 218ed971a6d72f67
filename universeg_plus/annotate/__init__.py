"""Annotate a dataset: a resumable session whose support set grows with every accepted mask.

::

    from universeg_plus.annotate import AnnotationSession
    with AnnotationSession("scans/", session="labels/") as s:
        for item in s:
            s.accept(edit(s.image(item), s.propose(item).mask))

See :class:`AnnotationSession`, :func:`simulate` (replay a labelled dataset with its masks as the
annotator) and :mod:`.edits` (clicks, brush, edit cost).
"""

from .edits import brush, clear, click, edit_cost, edit_pixels, entropy_score, label_dice
from .proposals import Proposal, Proposer
from .session import AnnotationSession, weights_sha256
from .simulate import SimulatedItem, simulate, summarize
from .sources import Item
from .store import ItemRecord, SessionLocked

__all__ = [
    "AnnotationSession", "Item", "ItemRecord", "Proposal", "Proposer", "SessionLocked", "SimulatedItem", "brush",
    "clear", "click", "edit_cost", "edit_pixels", "entropy_score", "label_dice", "simulate", "summarize",
    "weights_sha256",
]
