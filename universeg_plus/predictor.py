"""The Predictor: any image in, a mask out at the image's original size.

::

    predictor = Predictor(create_model("universeg-v1", pretrained=True))
    predictor.set_support(SupportSet.from_folder("labelled/"))
    pred = predictor.predict("scan.png", ensemble=4, support_size=16)
    pred.mask            # (H, W) uint8 label map at the scan's size
    pred.probabilities   # (H, W) float32 foreground probability ((C, H, W) for C classes)

Multi-class support sets are segmented one-vs-rest per class; the label map takes the most probable
class per pixel, background where every class is below ``threshold``.

Memory is bounded by chunking: a support subset larger than ``support_chunk`` is split into
near-equal disjoint chunks whose probability maps are averaged (weighted by chunk size), and
targets are batched so that at most ``max_pairs`` (target, support) pairs go through the network
at once. Chunked results equal support-set ensembling over a partition, not one pass over the
whole set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .support import SupportSet, preprocess_image, to_array

__all__ = ["Prediction", "Predictor", "segment"]

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """A prediction at the target's original size.

    Attributes:
        probabilities: float32 in [0, 1]: ``(H, W)`` for one class, ``(C, H, W)`` for ``C`` classes;
            a leading ``N`` axis for a batch (``(N, H, W)`` / ``(N, C, H, W)``), a volume's shape for
            volumes.
        mask: Integer label map (uint8 when labels fit): ``(H, W)``, ``(N, H, W)`` or the volume's shape;
            values are ``classes`` or 0 for background.
        classes: The foreground labels, in the order of the class axis of ``probabilities``.
    """

    probabilities: np.ndarray
    mask: np.ndarray
    classes: list[int] = field(default_factory=lambda: [1])


def _model_io(model: Any) -> tuple[tuple[int, int], int | None, int | None]:
    size = getattr(model, "image_size", None) or model.config.input_size
    return (int(size[0]), int(size[1])), getattr(model, "support_size", None), getattr(model, "batch_size", None)


class Predictor:
    """Segment images from a support set (SamPredictor-style: set the support once, predict many).

    Args:
        model: A network following the model contract, a compiled model, or a registered name (loads
            pretrained weights when the table has them, else warns that weights are random).
        device: Torch device (default: the model's, else CPU).
        backend: ``"eager"`` or ``"tvm"`` (compiles through ``universeg_plus.compile``).
        support_chunk: Largest support subset sent through the network at once.
        max_pairs: Upper bound on ``batch * support`` per forward pass.
        **compile_kwargs: Passed to ``universeg_plus.compile`` for ``backend="tvm"``.
    """

    def __init__(
        self,
        model: nn.Module | Any | str,
        device: str | torch.device | None = None,
        backend: str = "eager",
        support_chunk: int = 64,
        max_pairs: int = 64,
        **compile_kwargs: Any,
    ) -> None:
        if backend not in ("eager", "tvm"):
            raise ValueError(f"backend must be 'eager' or 'tvm', got {backend!r}")
        if compile_kwargs and backend != "tvm":
            raise TypeError(
                f"unexpected keyword argument(s) {sorted(compile_kwargs)} (compile options need backend='tvm')"
            )
        if support_chunk < 1 or max_pairs < 1:
            raise ValueError(f"support_chunk and max_pairs must be >= 1, got {support_chunk} and {max_pairs}")
        if isinstance(model, str):
            model = _load_named(model)
        if not callable(model) or not hasattr(model, "config"):
            raise TypeError(
                f"model must be a UniverSegPlus-like module, a compiled model or a name, got {type(model).__name__}"
            )
        if isinstance(model, nn.Module):
            param = next(model.parameters(), None)
            default = param.device if param is not None else torch.device("cpu")
            self.device = torch.device(device) if device is not None else default
            model = model.to(self.device).eval()
        else:
            self.device = torch.device(device) if device is not None else torch.device("cpu")
        if backend == "tvm":
            import universeg_plus

            compile_fn = getattr(universeg_plus, "compile", None)
            if compile_fn is None:
                raise ImportError('the TVM backend is not available: pip install "universeg-plus[tvm]"')
            compile_kwargs.setdefault("image_size", tuple(model.config.input_size))
            model = compile_fn(model, backend="tvm", **compile_kwargs)
        self.model = model
        self.input_size, self._fixed_s, self._fixed_b = _model_io(model)
        self.support_chunk = int(support_chunk)
        self.max_pairs = int(max_pairs)
        self._support: SupportSet | None = None

    # ------------------------------------------------------------------ support
    def set_support(self, support: SupportSet) -> Predictor:
        """Use ``support`` for the following predictions (resampled to the model size if needed)."""
        if not isinstance(support, SupportSet):
            raise TypeError(
                f"support must be a SupportSet, got {type(support).__name__}; build one with SupportSet.from_arrays"
            )
        if support.size != self.input_size:
            log.info("resampling the support set from %s to the model input size %s", support.size, self.input_size)
            support = support.resized(self.input_size)
        if not support.classes:
            log.warning("the support set has no foreground in any mask: predictions will be (nearly) empty")
        self._support = support
        return self

    @property
    def support(self) -> SupportSet:
        """The current support set; RuntimeError before :meth:`set_support`."""
        if self._support is None:
            raise RuntimeError("no support set: call predictor.set_support(SupportSet...) before predict()")
        return self._support

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        target: Any,
        threshold: float = 0.5,
        ensemble: int = 1,
        support_size: int | None = None,
        flips: bool = False,
        seed: int = 0,
    ) -> Prediction:
        """Segment one image, or a batch of same-size images.

        Args:
            target: An image (array ``(H, W)``/``(H, W, 3)``, tensor, PIL image, path), a list of
                same-size images, or a stacked ``(N, H, W)`` array / ``(N, 1, H, W)`` tensor.
            threshold: Foreground probability cut-off in (0, 1).
            ensemble: Number of support subsets whose probabilities are averaged.
            support_size: Examples per subset (default: all, or half of the set when ensembling).
            flips: Also predict on horizontally/vertically flipped inputs and average.
            seed: Seed of the subset draw.

        Returns:
            :class:`Prediction` at the original size (a leading ``N`` axis for a batch).

        Raises:
            RuntimeError: :meth:`set_support` was not called.
            ValueError: bad target or option values; a list of images of different sizes (use
                :meth:`predict_many`).
        """
        support = self.support
        targets, batched = _targets(target)
        sizes = {t.shape[:2] for t in targets}
        if batched and len(sizes) > 1:
            raise ValueError(
                f"batch targets differ in size {sorted(sizes)}; use predictor.predict_many(), which returns a list"
            )
        preds = self._run(targets, support, threshold, ensemble, support_size, flips, seed)
        if not batched:
            return preds[0]
        return Prediction(
            np.stack([p.probabilities for p in preds]), np.stack([p.mask for p in preds]), preds[0].classes
        )

    def predict_many(self, targets: Sequence[Any], **kwargs: Any) -> list[Prediction]:
        """Like :meth:`predict` for a list of images of any sizes; one :class:`Prediction` each."""
        support = self.support
        arrays = [_target_array(t, f"#{i}") for i, t in enumerate(_target_list(targets))]
        return self._run(arrays, support, **_predict_kwargs(kwargs))

    def predict_volume(self, volume: Any, axis: int = 2, **kwargs: Any) -> Prediction:
        """Segment a 3D volume slice by slice along ``axis``.

        Args:
            volume: ``(X, Y, Z)`` array/tensor or a NIfTI/``.npy`` path.
            axis: Slicing axis.
            **kwargs: As :meth:`predict`.

        Returns:
            :class:`Prediction` with ``mask`` shaped like the volume and ``probabilities`` like the volume
            (``(C, X, Y, Z)`` for several classes).
        """
        from .io.nifti import volume_slices

        support = self.support
        vol = to_array(volume, "image") if not isinstance(volume, torch.Tensor) else volume.detach().cpu().numpy()
        vol = np.asarray(vol)
        if vol.ndim != 3:
            raise ValueError(f"volume must be 3D, got shape {vol.shape}")
        slices = volume_slices(vol, axis)
        preds = self._run([slices[k] for k in range(len(slices))], support, **_predict_kwargs(kwargs))
        ax = axis % 3
        mask = np.moveaxis(np.stack([p.mask for p in preds]), 0, ax)
        probs = np.stack([p.probabilities for p in preds])  # (D, H, W) or (D, C, H, W)
        probs = np.moveaxis(probs, 0, ax) if probs.ndim == 3 else np.moveaxis(np.moveaxis(probs, 1, 0), 1, ax + 1)
        return Prediction(probs, mask, preds[0].classes)

    # ------------------------------------------------------------------ internals
    def _run(
        self,
        targets: list[np.ndarray],
        support: SupportSet,
        threshold: float = 0.5,
        ensemble: int = 1,
        support_size: int | None = None,
        flips: bool = False,
        seed: int = 0,
    ) -> list[Prediction]:
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not isinstance(ensemble, int) or ensemble < 1:
            raise ValueError(f"ensemble must be a positive integer, got {ensemble!r}")
        subsets = self._subsets(support, ensemble, support_size, seed)
        classes = support.classes or [1]
        x = torch.stack([preprocess_image(t, self.input_size, where=f"target #{i}") for i, t in enumerate(targets)])
        probs = torch.stack(
            [self._probabilities(x, support.images, (support.masks == c).float(), subsets, flips) for c in classes],
            dim=1,
        )  # (N, C, h, w)
        out = []
        for i, t in enumerate(targets):
            p = F.interpolate(probs[i : i + 1], size=tuple(t.shape[:2]), mode="bilinear", align_corners=False)[0]
            p = p.clamp_(0, 1).numpy().astype(np.float32)
            best = p.argmax(axis=0)
            labels = np.asarray(classes)[best]
            mask = np.where(p.max(axis=0) > threshold, labels, 0)
            dtype = np.uint8 if max(classes) < 256 else np.int32
            out.append(Prediction(p[0] if len(classes) == 1 else p, mask.astype(dtype), list(classes)))
        return out

    def _subsets(self, support: SupportSet, ensemble: int, support_size: int | None, seed: int) -> list[list[int]]:
        n = len(support)
        if support_size is None:
            k = n if ensemble == 1 else max(1, math.ceil(n / 2))
            if self._fixed_s:
                k = self._fixed_s * max(1, k // self._fixed_s)
        else:
            k = support_size
        if not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"support_size must be an integer in 1..{n} (the support set size), got {k!r}")
        if self._fixed_s and k % self._fixed_s:
            raise ValueError(
                f"the compiled model takes exactly {self._fixed_s} support examples per pass; "
                f"support_size must be a multiple of it, got {k}"
            )
        if ensemble == 1 and k == n:
            return [list(range(n))]
        return support.ensemble_indices(ensemble, k, seed)

    def _chunks(self, idx: list[int]) -> list[list[int]]:
        step = self._fixed_s or self.support_chunk
        if self._fixed_s:
            return [idx[i : i + step] for i in range(0, len(idx), step)]
        parts = math.ceil(len(idx) / step)
        return [c.tolist() for c in np.array_split(np.asarray(idx), parts)]

    @torch.inference_mode()
    def _probabilities(
        self,
        x: torch.Tensor,
        s_img: torch.Tensor,
        s_lab: torch.Tensor,
        subsets: list[list[int]],
        flips: bool,
    ) -> torch.Tensor:
        """Mean foreground probability ``(N, h, w)`` over subsets, chunks and flips."""
        views = [()] + ([(-1,), (-2,), (-2, -1)] if flips else [])
        total = torch.zeros(x.shape[0], *x.shape[-2:])
        weight = 0.0
        for idx in subsets:
            for chunk in self._chunks(idx):
                si, sl = s_img[chunk], s_lab[chunk]
                for dims in views:
                    p = self._forward_batches(
                        x.flip(dims) if dims else x, si.flip(dims) if dims else si, sl.flip(dims) if dims else sl
                    )
                    total += (p.flip(dims) if dims else p) * len(chunk)
                    weight += len(chunk)
        return total / weight

    def _forward_batches(self, x: torch.Tensor, si: torch.Tensor, sl: torch.Tensor) -> torch.Tensor:
        s = si.shape[0]
        b = self._fixed_b or max(1, self.max_pairs // s)
        out = []
        si_d, sl_d = si.to(self.device)[None], sl.to(self.device)[None]
        for i in range(0, x.shape[0], b):
            xb = x[i : i + b].to(self.device)
            n = xb.shape[0]
            if self._fixed_b and n < b:  # compiled for a fixed batch: pad with copies
                xb = torch.cat([xb, xb[-1:].expand(b - n, *xb.shape[1:])])
            bb = xb.shape[0]
            logits = self.model(xb, si_d.expand(bb, *si_d.shape[1:]), sl_d.expand(bb, *sl_d.shape[1:]))
            out.append(torch.sigmoid(logits[:n, 0].float()).cpu())
        return torch.cat(out)


def _predict_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"threshold", "ensemble", "support_size", "flips", "seed"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    return kwargs


def _target_array(x: Any, where: str) -> np.ndarray:
    arr = np.asarray(to_array(x, "image"))
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return arr
    if arr.ndim != 2:
        raise ValueError(
            f"target {where if not isinstance(x, (str, bytes)) else x} must be a 2D image (H, W) or (H, W, 3), "
            f"got shape {arr.shape}; for volumes use predict_volume"
        )
    return arr


def _target_list(targets: Any) -> list[Any]:
    if isinstance(targets, (np.ndarray, torch.Tensor)):
        t = targets[:, 0] if targets.ndim == 4 and targets.shape[1] == 1 else targets
        if t.ndim != 3:
            raise ValueError(f"stacked targets must have shape (N, H, W) or (N, 1, H, W), got {tuple(targets.shape)}")
        return list(t)
    if isinstance(targets, (list, tuple)):
        if not targets:
            raise ValueError("no targets given")
        return list(targets)
    raise TypeError(f"targets must be a list or a stacked array, got {type(targets).__name__}")


def _targets(target: Any) -> tuple[list[np.ndarray], bool]:
    if isinstance(target, (list, tuple)):
        return [_target_array(t, f"#{i}") for i, t in enumerate(_target_list(target))], True
    if isinstance(target, (np.ndarray, torch.Tensor)):
        stacked_np = isinstance(target, np.ndarray) and target.ndim == 3 and target.shape[-1] not in (1, 3, 4)
        stacked_t = isinstance(target, torch.Tensor) and (
            target.ndim == 4 or (target.ndim == 3 and target.shape[0] not in (1, 3, 4))
        )
        if stacked_np or stacked_t:
            return [_target_array(t, f"#{i}") for i, t in enumerate(_target_list(target))], True
    return [_target_array(target, "")], False


def _load_named(name: str) -> nn.Module:
    from .registry import create_model

    return create_model(name, pretrained="auto")


def segment(
    target: Any,
    support_images: Sequence[Any],
    support_masks: Sequence[Any],
    model: nn.Module | str = "universeg-v1",
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> Prediction:
    """One call from images to a mask.

    Args:
        target: Image(s) to segment (see :meth:`Predictor.predict`).
        support_images: Labelled example images (arrays, tensors, PIL images or paths).
        support_masks: Their masks (binary or integer label maps).
        model: A model or a registered name (``"universeg-v1"`` loads its pretrained weights).
        device: Torch device.
        **kwargs: ``threshold``, ``ensemble``, ``support_size``, ``flips``, ``seed``.

    Returns:
        :class:`Prediction` at the target's original size.
    """
    predictor = Predictor(model, device=device)
    support = SupportSet.from_arrays(support_images, support_masks, size=predictor.input_size)
    return predictor.set_support(support).predict(target, **_predict_kwargs(kwargs))
