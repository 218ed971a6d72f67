"""AnnotationSession: label a dataset image after image, the support set growing with every accepted mask.

::

    with AnnotationSession("scans/", session="labels/") as s:      # resumes if labels/ holds a session
        while (item := s.next_item()) is not None:
            s.accept(my_editor(s.image(item), s.propose(item).mask))   # or s.skip(item); s.undo()

Every accept writes the label map (``labels/masks/<item>.png``) and then ``session.json``, each
atomically, before it returns: a killed process loses nothing that was accepted, and opening the
folder again continues where it stopped. A volume's slices are items too; :meth:`propagate` labels
every other slice from the nearest labelled ones and writes the label volume with the source affine.

Colour images: ``colour="fisher"`` or ``"auto"`` (fixed at session start, kept in ``session.json``)
refits the projection on the accepted items whenever they change, as ``Predictor.set_support(...,
colour=...)`` does on any support set (``"auto"`` re-makes its leave-one-out choice of kind at 1, 2,
4, 8, ... accepted items); proposals, the uncertain order and adaptation all see the items
projected alike (docs/colour.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..colour import ColourProjection, check_colour, fit_colour
from ..io.images import file_stem, write_labels
from ..io.inputs import Named, as_count
from ..predictor import Predictor
from ..support import SupportSet
from .edits import edit_cost, edit_pixels, entropy_score
from .proposals import Proposal, Proposer
from .sources import Item, ItemSource, open_source
from .store import ItemRecord, SessionFile, SessionStore

__all__ = ["AnnotationSession", "weights_sha256"]

log = logging.getLogger(__name__)

Order = Literal["in-order", "uncertain", "spread"]


def weights_sha256(model: Any) -> str | None:
    """SHA-256 of a torch model's state dict (names, dtypes, shapes and values, in order); ``None`` otherwise."""
    if not isinstance(model, torch.nn.Module):
        return None
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class AnnotationSession:
    """A resumable labelling session over a dataset, proposing each mask from the items accepted so far.

    Args:
        source: A folder of 2D images, a list of image files, a 3D volume file (NIfTI/``.npy``,
            sliced along ``axis``) or a list of arrays (:class:`~universeg_plus.io.inputs.Named` for names).
        session: The session folder: created, or resumed when it holds a session of the same source.
        model: A model name (default: the best with trained weights), an ``nn.Module``, or anything
            :class:`~universeg_plus.predictor.Predictor` takes.
        device: Torch device.
        order: ``"in-order"`` (source order), ``"uncertain"`` (the pending item whose in-context
            probability map has the highest mean entropy first, among the next ``uncertain_pool``) or
            ``"spread"`` (the middle item first, then the one farthest from every answered item: a
            volume's slices for propagation). Default: ``"spread"`` for a volume, else ``"in-order"``.
        adapt_steps: Steps of test-time adaptation refreshed after every accept (0: off). Proposals
            come at once from the in-context model; the adapted copy replaces it when ready.
        background: Adapt in a background thread (``False``: each accept waits for it).
        volume_support: For a volume: the nearest labelled slices used as support (proposals, propagation).
        pretrained: As :class:`~universeg_plus.predictor.Predictor` for a model name (``False``: random weights).
        uncertainty: ``f(probabilities) -> float`` ranking items for ``order="uncertain"`` (default:
            mean entropy; a sampled uncertainty can replace it).
        colour: How RGB items become grey (docs/colour.md), fixed at session start and saved:
            ``"luma"`` (the default of a new session), ``"fisher"`` (refitted on the accepted items
            whenever they change), ``"auto"`` (the leave-one-out choice of kind made on the first 1, 2,
            4, 8, ... accepted items, see :meth:`_colour_for`; Fisher refitted at every change), or a
            fixed ``ColourProjection``. ``None``: the session's own (resumed), else luma.
            While no accepted mask holds both foreground and background, ``"fisher"``/``"auto"``
            have nothing to fit: proposals use luma. 2D sources only; ``"fisher"`` needs RGB items.
        **predict_options: ``threshold``, ``ensemble``, ``support_size``, ``flips`` for the proposals.

    Raises:
        SessionLocked: another session has this folder open.
        ValueError: a corrupt session file (named, left untouched), a session folder of another source,
            or a ``colour`` other than the one the session was started with.
    """

    def __init__(
        self,
        source: Any,
        session: str | os.PathLike,
        model: Any = None,
        *,
        device: str | torch.device | None = None,
        order: Order | None = None,
        adapt_steps: int = 0,
        background: bool = True,
        axis: int = 2,
        volume_support: int = 3,
        pretrained: bool | None = None,
        uncertainty: Callable[[np.ndarray], float] = entropy_score,
        uncertain_pool: int = 32,
        seed: int = 0,
        colour: str | ColourProjection | None = None,
        **predict_options: Any,
    ) -> None:
        if order not in (None, "in-order", "uncertain", "spread"):
            raise ValueError(f"order must be 'in-order', 'uncertain' or 'spread', got {order!r}")
        self.adapt_steps = as_count(adapt_steps, "adapt_steps", 0)
        self.volume_support = as_count(volume_support, "volume_support")
        self.uncertain_pool = as_count(uncertain_pool, "uncertain_pool")
        self.uncertainty = uncertainty
        asked = None if colour is None else check_colour(colour)
        self.source: ItemSource = open_source(source, axis)
        self.order: str = order or ("spread" if self.source.is_volume else "in-order")
        if model is None or isinstance(model, str):
            from ..registry import default_model_name

            model_name = model or default_model_name()
            model = Predictor(model, device=device, pretrained=pretrained).model
        else:
            model_name = getattr(getattr(model, "config", None), "name", None) or type(model).__name__
        Predictor(model, device=device)  # checks the model and device before the folder is touched
        self.model_record = {"name": model_name, "weights_sha256": weights_sha256(model)}
        self.store = SessionStore(session)
        try:
            self.state = self._open_state(self.order, asked)
            self.colour: str | ColourProjection = _colour_of(self.state.colour)
            self.proposer = Proposer(
                model, device=device, adapt_steps=self.adapt_steps, background=background, seed=seed,
                **predict_options,
            )
        except BaseException:
            self.store.close()
            raise
        self._slices = Predictor(self.proposer.model, device=device) if self.source.is_volume else None
        # fits the colour projection on the accepted items (the proposer's own predictor is in use)
        self._fitter = None if self.colour == "luma" else Predictor(self.proposer.model, device=device)
        self.colour_scores: dict[str, float] = {}
        self._auto: tuple[tuple[int, ...], str | ColourProjection, dict[str, float]] | None = None
        self.predict_options = predict_options
        self._shown: dict[int, tuple[Proposal, float]] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._next: tuple[int, int] | None = None
        self._propagated: np.ndarray | None = None
        for i, rec in enumerate(self.state.items):
            if rec.state == "accepted":
                self._masks[i] = self._read_mask(i, rec)
        self._refresh_support()

    # ------------------------------------------------------------------ opening
    def _open_state(self, order: str, colour: str | ColourProjection | None) -> SessionFile:
        state = self.store.read()
        names = [it.name for it in self.source.items]
        saved = None if colour is None else colour.as_dict() if isinstance(colour, ColourProjection) else colour
        if state is None:
            self._check_colour(colour or "luma", saved)  # before the folder gets a session file
            state = SessionFile(
                source=self.source.record, model=self.model_record, order=order, colour=saved or "luma",
                items=[ItemRecord(name=n) for n in names],
            )
            self.store.write(state)
            log.info("new annotation session in %s: %d items", self.store.folder, len(names))
            return state
        if [it.name for it in state.items] != names:
            raise ValueError(
                f"the session in {self.store.folder} belongs to another source ({len(state.items)} items, first "
                f"{state.items[0].name!r}) than the one given ({len(names)} items, first {names[0]!r}); "
                "use another --session folder"
            )
        self._check_colour(_colour_of(state.colour), state.colour)
        if saved is not None and saved != state.colour:
            raise ValueError(
                f"the session in {self.store.folder} was started with colour={_colour_text(state.colour)}; it stays "
                f"fixed (the accepted items were proposed with it), got colour={_colour_text(saved)}: leave colour "
                "out to resume, or use another session folder"
            )
        if state.model.get("weights_sha256") != self.model_record["weights_sha256"]:
            log.warning(
                "session %s was made with model %s (weights %s); proposals now come from %s (weights %s); "
                "the accepted masks stay as they are", self.store.folder, state.model.get("name"),
                str(state.model.get("weights_sha256"))[:12], self.model_record["name"],
                str(self.model_record["weights_sha256"])[:12],
            )
        done = sum(it.state != "pending" for it in state.items)
        log.info("resumed the annotation session in %s: %d of %d items answered", self.store.folder, done, len(names))
        return state

    def _check_colour(self, colour: str | ColourProjection, saved: Any) -> None:
        """A colour projection needs 2D items; ``"fisher"`` or a fixed one, RGB items (the first is looked at)."""
        if isinstance(colour, str) and colour == "luma":
            return
        self.source.keep_colour()
        if self.source.is_volume:
            raise ValueError(
                f"colour={_colour_text(saved)} projects RGB images; a volume's slices are grey: use colour='luma'"
            )
        first = self.source.image(0)
        if not (isinstance(colour, str) and colour == "auto") and first.ndim != 3:
            raise ValueError(
                f"colour={_colour_text(saved)} projects RGB images, but item {self.items[0].name!r} is grayscale "
                f"(shape {first.shape}): use colour='luma' (or 'auto', which keeps grey items grey)"
            )

    @property
    def colour_projection(self) -> ColourProjection:
        """The projection the current proposals use (refitted on the accepted items with ``"fisher"``/``"auto"``)."""
        return self.proposer.fast.colour

    def _read_mask(self, index: int, rec: ItemRecord) -> np.ndarray:
        mask = self.store.read_mask(rec.mask or "")
        shape = self.source.shape(index)
        if mask.shape != shape:
            raise ValueError(
                f"mask {self.store.folder / (rec.mask or '')} is {mask.shape} but item {rec.name!r} is {shape}; "
                "the session folder does not match its images"
            )
        return mask

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> AnnotationSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the background adaptation and release the folder's lock (idempotent)."""
        self.proposer.close()
        self.store.close()

    def __iter__(self) -> Iterator[Item]:
        """Pending items, next first (each call of ``next`` asks :meth:`next_item` again)."""
        while (item := self.next_item()) is not None:
            yield item

    # ------------------------------------------------------------------ queries
    @property
    def folder(self) -> Path:
        return self.store.folder

    @property
    def items(self) -> list[Item]:
        return self.source.items

    def record(self, item: Item | int) -> ItemRecord:
        """What the session file says about ``item``."""
        return self.state.items[self._index(item)]

    def image(self, item: Item | int) -> np.ndarray:
        """The item's image ``(H, W)`` (RGB as luma), or ``(H, W, 3)`` for RGB with a colour projection."""
        return self.source.image(self._index(item))

    def mask(self, item: Item | int) -> np.ndarray | None:
        """The accepted label map of ``item``, or ``None``."""
        return self._masks.get(self._index(item))

    @property
    def progress(self) -> dict[str, int]:
        """``{"accepted", "skipped", "pending", "total"}`` item counts."""
        states = [it.state for it in self.state.items]
        return {
            "accepted": states.count("accepted"), "skipped": states.count("skipped"),
            "pending": states.count("pending"), "total": len(states),
        }

    def history(self) -> list[ItemRecord]:
        """Answered items in the order they were answered."""
        return sorted((it for it in self.state.items if it.step is not None), key=lambda it: it.step or 0)

    def _index(self, item: Item | int) -> int:
        index = item.index if isinstance(item, Item) else item
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.items):
            raise ValueError(f"item must be an Item of this session or an index 0..{len(self.items) - 1}, got {item!r}")
        return int(index)

    # ------------------------------------------------------------------ support
    def _accepted(self) -> list[int]:
        return [self._index_of(rec.name) for rec in self.history() if rec.state == "accepted"]

    def _index_of(self, name: str) -> int:
        return next(i for i, it in enumerate(self.state.items) if it.name == name)

    def support(self, indices: list[int] | None = None) -> SupportSet | None:
        """The support set of the accepted items (or of ``indices``), at the model's input size; ``None`` if empty.

        With a colour projection, the items are projected by it, fitted on these items
        (``"fisher"``/``"auto"``; also :attr:`colour_scores`), and the set carries it (``SupportSet.colour``).
        """
        idx = self._accepted() if indices is None else indices
        if not idx:
            return None
        # a fixed projection applies at once; "fisher"/"auto" need foreground and background pixels to fit
        fits = isinstance(self.colour, ColourProjection) or any(
            np.any(self._masks[i]) and not np.all(self._masks[i]) for i in idx
        )
        if self._fitter is not None and fits:
            self._fitter.set_support(
                [Named(self.source.image(i), self.items[i].name) for i in idx], [self._masks[i] for i in idx],
                max_labels=None, colour=self._colour_for(idx),
            )
            self.colour_scores = self._auto[2] if self._auto is not None else self._fitter.colour_scores
            return self._fitter.support
        self.colour_scores = {}
        return SupportSet.from_arrays(
            [self.source.image(i) for i in idx], [self._masks[i] for i in idx],
            size=self.proposer.fast.input_size, names=[self.items[i].name for i in idx], max_labels=None,
        )

    def _colour_for(self, idx: list[int]) -> str | ColourProjection:
        """What ``set_support`` is asked for on the accepted items ``idx`` (in the order accepted).

        The session's choice, except ``"auto"``: its leave-one-out choice among luma, R, G, B and
        Fisher is made on the first 1, 2, 4, 8, ... accepted items (the largest power of two), and that
        kind is kept until the next power of two (Fisher refitted on every accepted item). So a choice
        costs about 5 x S in-context passes at S = 1, 2, 4, 8, ... only, and a resumed session makes
        the same choice as one that never stopped.
        """
        if not (isinstance(self.colour, str) and self.colour == "auto"):
            return self.colour
        first = tuple(idx[: 1 << (len(idx).bit_length() - 1)])
        if self._auto is None or self._auto[0] != first:
            masks = [self._masks[i] for i in first]
            kind: str | ColourProjection = "luma"
            scores: dict[str, float] = {}
            if any(np.any(m) for m in masks) and not all(np.all(m) for m in masks):
                proj, scores = fit_colour("auto", self.proposer.model, [self.source.image(i) for i in first], masks,
                                          self.proposer.fast.input_size, [self.items[i].name for i in first])
                kind = "luma" if proj is None else "fisher" if proj.name == "fisher" else proj
            self._auto = (first, kind, scores)
            log.info("colour auto: %s on the first %d accepted item(s)%s",
                     kind if isinstance(kind, str) else kind.name, len(first), f" {scores}" if scores else "")
        return self._auto[1]

    def _refresh_support(self) -> None:
        self._next = None
        self.proposer.update(None if self.source.is_volume else self.support())

    # ------------------------------------------------------------------ the loop
    def next_item(self) -> Item | None:
        """The next pending item (source order, or most uncertain first), ``None`` when all are answered."""
        pending = [i for i, it in enumerate(self.state.items) if it.state == "pending"]
        if not pending:
            return None
        if self.order == "spread":
            answered = [i for i, it in enumerate(self.state.items) if it.state != "pending"]
            if not answered:
                return self.items[pending[len(pending) // 2]]
            return self.items[max(pending, key=lambda i: (min(abs(i - j) for j in answered), -i))]
        if self.order == "in-order" or not self._accepted():
            return self.items[pending[0]]
        if self._next is not None and self._next[0] == self.proposer.version and self._next[1] in pending:
            return self.items[self._next[1]]
        pool = pending[: self.uncertain_pool]
        scores = self.proposer.uncertainty([self.source.image(i) for i in pool], self.uncertainty)
        best = pool[int(np.argmax(scores))]
        self._next = (self.proposer.version, best)
        return self.items[best]

    def propose(self, item: Item | int | None = None, refined: bool = True, wait: bool = False) -> Proposal:
        """The proposed label map for ``item`` (default :meth:`next_item`), remembered as the one shown.

        Args:
            refined: Use the adapted copy when it is ready for the current support set.
            wait: Wait for the adapted copy first (only with ``adapt_steps > 0``).
        """
        index = self._index(item if item is not None else self._require_next())
        if self.source.is_volume:
            proposal = self._propose_slice(index)
        else:
            if wait:
                self.proposer.wait_refined()
            proposal = self.proposer.propose(self.source.image(index), refined=refined)
        self._shown[index] = (proposal, time.monotonic())
        return proposal

    def _require_next(self) -> Item:
        item = self.next_item()
        if item is None:
            raise RuntimeError("every item is answered: nothing to propose (undo() reopens the last one)")
        return item

    def accept(self, mask: np.ndarray | None = None, item: Item | int | None = None) -> ItemRecord:
        """Accept a label map for ``item`` (default: the last proposed item).

        Args:
            mask: ``(H, W)`` integer label map at the item's size; ``None`` accepts the shown proposal as is.
            item: The item (default: the one most recently proposed, else :meth:`next_item`).

        Returns:
            The item's record (edit pixels and cost against the proposal shown, seconds since it was shown).
        """
        index = self._answer_index(item)
        shown = self._shown.get(index)
        shape = self.source.shape(index)
        if mask is None:
            if shown is None:
                raise ValueError(f"no proposal was shown for item {self.items[index].name!r}: pass the mask")
            mask = shown[0].mask
        m = np.asarray(mask)
        if m.dtype.kind == "b":
            m = m.astype(np.uint8)
        if m.shape != shape:
            raise ValueError(
                f"mask for item {self.items[index].name!r} must be {shape} (the image's size), got {m.shape}"
            )
        if m.dtype.kind not in "iuf" or (m.size and (m.min() < 0 or not np.array_equal(m, np.round(m)))):
            raise ValueError(f"mask for item {self.items[index].name!r} must be a non-negative integer label map")
        m = m.astype(np.int64)
        proposal = shown[0] if shown is not None else None
        proposed = proposal.mask if proposal is not None else np.zeros(shape, np.uint8)
        rec = self.state.items[index]
        rel = self.store.write_mask(rec.name, m)
        changed = edit_pixels(proposed, m)
        self.state.items[index] = rec.model_copy(update={
            "state": "accepted", "mask": rel, "edited": changed > 0, "edit_pixels": changed,
            "edit_cost": edit_cost(proposed, m), "seconds": round(time.monotonic() - shown[1], 3) if shown else None,
            "proposal": proposal.source if proposal is not None else "none",
            "support": proposal.support if proposal is not None else len(self._masks), "step": self._next_step(),
        })
        self.store.write(self.state)
        self._masks[index] = m
        self._shown.pop(index, None)
        self._refresh_support()
        return self.state.items[index]

    def skip(self, item: Item | int | None = None) -> ItemRecord:
        """Leave ``item`` (default: the last proposed) unlabelled; it is not proposed again (undo reopens it)."""
        index = self._answer_index(item)
        shown = self._shown.pop(index, None)
        rec = self.state.items[index]
        self.state.items[index] = rec.model_copy(update={
            "state": "skipped", "step": self._next_step(),
            "seconds": round(time.monotonic() - shown[1], 3) if shown else None,
        })
        self.store.write(self.state)
        self._next = None
        return self.state.items[index]

    def undo(self) -> Item | None:
        """Reopen the last answered item (its mask file is removed); returns it, or ``None`` if none."""
        history = self.history()
        if not history:
            return None
        rec = history[-1]
        index = self._index_of(rec.name)
        self.state.items[index] = ItemRecord(name=rec.name)
        self.store.write(self.state)  # first the record, then the file: a kill between leaves a stray file only
        if rec.mask:
            self.store.remove_mask(rec.mask)
        if self._masks.pop(index, None) is not None:
            self._refresh_support()
        self._next = (self.proposer.version, index)
        return self.items[index]

    def _answer_index(self, item: Item | int | None) -> int:
        if item is not None:
            index = self._index(item)
        elif self._shown:
            index = max(self._shown, key=lambda i: self._shown[i][1])
        else:
            index = self._require_next().index
        if self.state.items[index].state != "pending":
            raise ValueError(
                f"item {self.items[index].name!r} is already {self.state.items[index].state}; undo() it to answer again"
            )
        return index

    def _next_step(self) -> int:
        return max((it.step or 0 for it in self.state.items), default=0) + 1

    # ------------------------------------------------------------------ volumes
    def slice_support(self, index: int) -> list[int]:
        """The labelled slices a volume slice is proposed from: the ``volume_support`` nearest ones
        (with foreground, when any has), nearest first."""
        labelled = [i for i in self._masks if np.any(self._masks[i])] or list(self._masks)
        return sorted(labelled, key=lambda j: (abs(j - index), j))[: self.volume_support]

    def _slice_predictions(self, indices: list[int]) -> dict[int, Any]:
        """In-context predictions of volume slices, each from its nearest labelled slices."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for k in indices:
            groups.setdefault(tuple(sorted(self.slice_support(k))), []).append(k)
        out = {}
        predictor = self._slices or Predictor(self.proposer.model)
        for support_idx, members in groups.items():
            predictor.set_support(self.support(list(support_idx)))  # type: ignore[arg-type]
            preds = predictor.predict_many([self.source.image(k) for k in members], **self.predict_options)
            out.update({k: (p, len(support_idx)) for k, p in zip(members, preds)})
        return out

    def _propose_slice(self, index: int) -> Proposal:
        t0 = time.perf_counter()
        if not self._masks:
            return Proposal(np.zeros(self.source.shape(index), np.uint8), np.zeros(self.source.shape(index),
                            np.float32), [1], "none", 0, 0.0)
        pred, n = self._slice_predictions([index])[index]
        return Proposal(pred.mask, pred.probabilities, list(pred.classes), "in-context", n, time.perf_counter() - t0)

    def propagate(self, path: str | os.PathLike | None = None) -> Path:
        """Label every slice of the volume: accepted slices as they are, the others from their nearest
        labelled slices; write the label volume (NIfTI with the source's affine and header, or ``.npy``).

        Args:
            path: Destination (default ``<session>/<volume>_labels.nii.gz``, ``.npy`` for an ``.npy`` source).

        Returns:
            The written file. The propagated label volume is also :attr:`labels`.

        Raises:
            RuntimeError: the source is not a volume, or no slice is labelled yet.
        """
        if not self.source.is_volume:
            raise RuntimeError("propagate() is for volume sources; this session holds 2D images")
        if not self._masks:
            raise RuntimeError("label at least one slice (accept a mask) before propagating")
        others = [i for i in range(len(self.items)) if i not in self._masks]
        preds = self._slice_predictions(others)
        slices = [self._masks[k] if k in self._masks else preds[k][0].mask for k in range(len(self.items))]
        labels = np.moveaxis(np.stack(slices), 0, self.source.axis or 0)
        src = Path(self.source.record["path"])
        ref = self.source.volume_reference
        dest = Path(path) if path is not None else self.folder / (
            f"{file_stem(src)}_labels" + (".nii.gz" if ref is not None else ".npy")
        )
        written = write_labels(dest, labels, ref)
        self._propagated = labels
        log.info("propagated %d labelled slice(s) to %d slices: %s", len(self._masks), len(slices), written)
        return written

    @property
    def labels(self) -> np.ndarray | None:
        """The label volume of the last :meth:`propagate` (shaped like the source volume), or ``None``."""
        return self._propagated


def _colour_of(saved: str | dict[str, Any]) -> str | ColourProjection:
    """The ``colour`` of a session file: a mode name, or a fixed projection."""
    return ColourProjection.from_dict(saved) if isinstance(saved, dict) else saved


def _colour_text(saved: str | dict[str, Any]) -> str:
    return repr(saved) if isinstance(saved, str) else f"the fixed {saved.get('name')} projection {saved}"
