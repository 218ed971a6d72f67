"""What the Annotate tab shows and does, without gradio: the current item, its proposal and the edits.

One :class:`AnnotateController` serves one :class:`~universeg_plus.annotate.AnnotationSession` (one
annotator). Everything it shows comes from the session, so a restarted server opens where the session
file says the work stopped.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import numpy as np

from ..annotate import AnnotationSession, Proposal, clear, click
from ..io.images import overlay_mask

__all__ = ["AnnotateController", "View"]

#: ``(overlay RGB (H, W, 3) uint8 or None, status markdown, progress html, chart rows [(step, cost)])``
View = tuple[Any, str, str, list[tuple[int, float]]]


class AnnotateController:
    """The tab's state: the item on screen, its proposal and the working (edited) mask.

    Args:
        session: The open session it edits.
    """

    def __init__(self, session: AnnotationSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        self.index: int | None = None
        self.proposal: Proposal | None = None
        self.working: np.ndarray | None = None
        self.message = ""
        self._load_next()

    # -------------------------------------------------------------- internals
    def _load_next(self) -> None:
        item = self.session.next_item()
        self.index = None if item is None else item.index
        if item is None:
            self.proposal = self.working = None
            return
        self.proposal = self.session.propose(item)
        self.working = np.asarray(self.proposal.mask).astype(np.int64)

    @property
    def edited(self) -> bool:
        return (
            self.proposal is not None and self.working is not None
            and bool(np.any(self.working != self.proposal.mask))
        )

    def view(self) -> View:
        """What the page shows now."""
        s = self.session
        p = s.progress
        answered = p["accepted"] + p["skipped"]
        bar = (
            f'<div id="annotate-progress-text">{answered} of {p["total"]} answered '
            f'({p["accepted"]} accepted, {p["skipped"]} skipped)</div>'
            f'<progress value="{answered}" max="{p["total"]}" style="width:100%"></progress>'
        )
        chart = [(int(r.step or 0), float(r.edit_cost or 0.0)) for r in s.history() if r.state == "accepted"]
        if self.index is None or self.proposal is None or self.working is None:
            return None, f"**All {p['total']} items answered.** {html.escape(self.message)}", bar, chart
        item = s.items[self.index]
        overlay = overlay_mask(s.image(item), self.working)
        source = {"none": "no labelled item yet: draw it", "in-context": "in-context", "adapted": "adapted"}
        lines = [
            f"**Item** `{item.name}` ({self.index + 1} of {p['total']})",
            f"proposal: {source.get(self.proposal.source, self.proposal.source)} from {self.proposal.support} "
            f"labelled item(s), {self.proposal.seconds:.2f} s",
            "edited" if self.edited else "not edited",
        ]
        if s.colour != "luma":  # the projection these proposals saw, refitted on the accepted items
            lines.insert(2, f"colour: {self.proposal.colour}")
        if self.message:
            lines.append(html.escape(self.message))
        return overlay, "  \n".join(lines), bar, chart

    # -------------------------------------------------------------- actions
    def click(self, x: int, y: int, positive: bool, label: int = 1) -> View:
        """A click on the image at pixel ``(x, y)``: add the probability region (positive) or remove the region."""
        with self._lock:
            if self.index is None or self.working is None or self.proposal is None:
                return self.view()
            self.working = click(
                self.working, int(y), int(x), positive=positive, probabilities=self.proposal.probabilities,
                label=int(label), classes=self.proposal.classes,
            )
            self.message = ""
            return self.view()

    def clear(self) -> View:
        """Empty the working mask (the proposal was worse than nothing)."""
        with self._lock:
            if self.working is not None:
                self.working = clear(self.working)
            return self.view()

    def reset(self) -> View:
        """Back to the proposal as shown."""
        with self._lock:
            if self.proposal is not None:
                self.working = np.asarray(self.proposal.mask).astype(np.int64)
            return self.view()

    def accept(self) -> View:
        """Accept the working mask for the item on screen; show the next item's proposal."""
        with self._lock:
            if self.index is None or self.working is None:
                return self.view()
            rec = self.session.accept(self.working, self.index)
            self.message = f"accepted {rec.name} (edit cost {rec.edit_cost:.2f})"
            self._load_next()
            return self.view()

    def skip(self) -> View:
        with self._lock:
            if self.index is None:
                return self.view()
            rec = self.session.skip(self.index)
            self.message = f"skipped {rec.name}"
            self._load_next()
            return self.view()

    def undo(self) -> View:
        """Reopen the last answered item (with a fresh proposal)."""
        with self._lock:
            item = self.session.undo()
            if item is None:
                self.message = "nothing to undo"
                return self.view()
            self.index = item.index
            self.proposal = self.session.propose(item)
            self.working = np.asarray(self.proposal.mask).astype(np.int64)
            self.message = f"reopened {item.name}"
            return self.view()

    def refresh(self) -> View | None:
        """Replace an untouched in-context proposal by the adapted one once it is ready; ``None`` if nothing changed."""
        with self._lock:
            if (
                self.index is None or self.proposal is None or self.proposal.source != "in-context" or self.edited
                or not self.session.proposer.refined_ready
            ):
                return None
            self.proposal = self.session.propose(self.index)
            self.working = np.asarray(self.proposal.mask).astype(np.int64)
            return self.view()

    def propagate(self) -> tuple[str, View]:
        """Volumes: write the label volume from the labelled slices; returns its path and the view."""
        with self._lock:
            path = self.session.propagate()
            self.message = f"label volume written: {path}"
            return str(path), self.view()
