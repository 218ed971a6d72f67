"""The Predictor: any image in, a mask out at the image's original size.

::

    predictor = Predictor()                      # the best model with trained weights
    predictor.set_support(SupportSet.from_folder("labelled/"))
    pred = predictor.predict("scan.png", ensemble=4, support_size=16)
    pred.mask            # (H, W) uint8 label map at the scan's size
    pred.probabilities   # (H, W) float32 foreground probability ((C, H, W) for C classes)
    predictor.predict_file("ct.nii.gz", "ct_mask.nii.gz")   # same kind of file back, atomically

Multi-class support sets are segmented one-vs-rest per class; the label map takes the most probable
class per pixel, background where every class is below ``threshold``.

Every input goes through :mod:`universeg_plus.io.inputs` (the rules training uses); errors name the
input (``target #2``, ``target scan.png``).

Memory is bounded by chunking: a support subset larger than ``support_chunk`` is split into
near-equal disjoint chunks whose probability maps are averaged (weighted by chunk size), and
targets are batched so that at most ``max_pairs`` (target, support) pairs go through the network
at once. Chunked results equal support-set ensembling over a partition, not one pass over the
whole set.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .io.images import file_stem, write_labels, write_npy
from .io.inputs import (
    MAX_LABELS,
    Named,
    as_batch,
    as_count,
    image_array,
    probabilities_to_size,
    read_input,
    standardize_image,
    volume_array,
)
from .inference import predict_probabilities
from .support import SupportSet

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
        path: The file :meth:`Predictor.predict_file` wrote, else ``None``.
    """

    probabilities: np.ndarray
    mask: np.ndarray
    classes: list[int] = field(default_factory=lambda: [1])
    path: Path | None = None


def _model_io(model: Any) -> tuple[tuple[int, int], int | None, int | None]:
    size = getattr(model, "image_size", None) or model.config.input_size
    return (int(size[0]), int(size[1])), getattr(model, "support_size", None), getattr(model, "batch_size", None)


def _device(device: str | torch.device | None) -> torch.device | None:
    """``device`` parsed and checked to exist here (RuntimeError naming what is missing)."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise RuntimeError(f"device {str(device)!r} was asked for, but CUDA is not available here ({why}); use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {str(device)!r} was asked for, but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {str(device)!r} was asked for, but MPS is not available here; use 'cpu'")
    return dev


class Predictor:
    """Segment images from a support set (SamPredictor-style: set the support once, predict many).

    Args:
        model: A network following the model contract, a compiled model, a registered name, or
            ``None`` for :func:`universeg_plus.registry.default_model_name` (the best model with
            trained weights). A name loads its pretrained weights; a name without weights needs
            ``pretrained=False`` (random weights, said out loud).
        device: Torch device (default: the model's, else CPU); one that does not exist here is a
            ``RuntimeError``.
        backend: ``"eager"`` or ``"tvm"`` (compiles through :func:`universeg_plus.backends.compile`).
        support_chunk: Largest support subset sent through the network at once.
        max_pairs: Upper bound on ``batch * support`` per forward pass.
        pretrained: For a model name: ``None`` (default) loads its weights and refuses a name that has
            none; ``True`` loads them (error if none); ``False`` builds it with random weights.
        **compile_kwargs: Passed to :func:`universeg_plus.backends.compile` for ``backend="tvm"``.

    Raises:
        ValueError: unknown name, or a name without weights and ``pretrained`` not ``False``.
        RuntimeError: a device that does not exist here.
    """

    def __init__(
        self,
        model: nn.Module | Any | str | None = None,
        device: str | torch.device | None = None,
        backend: str = "eager",
        support_chunk: int = 64,
        max_pairs: int = 64,
        *,
        pretrained: bool | None = None,
        **compile_kwargs: Any,
    ) -> None:
        if backend not in ("eager", "tvm"):
            raise ValueError(f"backend must be 'eager' or 'tvm', got {backend!r}")
        if compile_kwargs and backend != "tvm":
            raise TypeError(
                f"unexpected keyword argument(s) {sorted(compile_kwargs)} (compile options need backend='tvm')"
            )
        self.support_chunk = as_count(support_chunk, "support_chunk")
        self.max_pairs = as_count(max_pairs, "max_pairs")
        dev = _device(device)
        if model is None or isinstance(model, str):
            model = _load_named(model, pretrained)
        elif pretrained is not None:
            raise TypeError("pretrained= applies to a model name; this model object already has its weights")
        if not callable(model) or not hasattr(model, "config"):
            raise TypeError(
                f"model must be a UniverSegPlus-like module, a compiled model or a name, got {type(model).__name__}"
            )
        if isinstance(model, nn.Module):
            param = next(model.parameters(), None)
            default = param.device if param is not None else torch.device("cpu")
            self.device = dev if dev is not None else default
            model = model.to(self.device).eval()
        else:
            self.device = dev if dev is not None else torch.device("cpu")
        if backend == "tvm":
            from .backends import compile as compile_tvm

            compile_kwargs.setdefault("image_size", tuple(model.config.input_size))
            model = compile_tvm(model, backend="tvm", **compile_kwargs)
        self.model = model
        self.input_size, self._fixed_s, self._fixed_b = _model_io(model)
        self._support: SupportSet | None = None
        self._adapted: dict[int, nn.Module] = {}

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
        if self._adapted:
            log.info("new support set: the adapted copy belonged to the previous one, back to the original model")
            self._adapted = {}
        self._support = support
        return self

    @property
    def support(self) -> SupportSet:
        """The current support set; RuntimeError before :meth:`set_support`."""
        if self._support is None:
            raise RuntimeError("no support set: call predictor.set_support(SupportSet...) before predict()")
        return self._support

    # ------------------------------------------------------------------ adaptation
    def adapt(
        self,
        steps: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        parts: str | None = None,
        progress: bool = True,
        **options: Any,
    ) -> Predictor:
        """Fine-tune a copy of the model on the current support set (test-time adaptation).

        Episodes come from the support set alone (leave-k-out, augmented); see
        :func:`universeg_plus.adapt.adapt_model` and :class:`~universeg_plus.adapt.AdaptConfig` for
        the defaults (300 steps, lr 1e-3, 64x64 crops: about the wall time of training the per-task
        U-Net of ``universeg-plus evaluate --baseline``). Later predictions use the adapted copy with
        the full support set; the original model is never changed, :meth:`reset` returns to it, and
        :meth:`set_support` with a new set does too. A multi-label set adapts one copy per label.

        Args:
            steps: Adam steps (default: ``AdaptConfig.steps``).
            lr: Peak learning rate (default: ``AdaptConfig.lr``).
            seed: Seeds episodes and augmentation (same support + seed -> same weights).
            parts: ``"all"``, ``"decoder"``, ``"encoder"`` or ``"last"`` (default ``"all"``).
            progress: Show a progress bar with the loss.
            **options: Other :class:`~universeg_plus.adapt.AdaptConfig` fields (``batch_size``, ``crop`` ...).

        Returns:
            ``self``, adapted.

        Raises:
            RuntimeError: no support set yet.
            TypeError: a compiled model (adapt the eager model, then compile the copy), or bad option types.
            ValueError: option values out of range.
        """
        from .adapt import adapt_config, adapt_model

        support = self.support
        if not isinstance(self.model, nn.Module):
            raise TypeError(
                f"adapt() needs an eager torch model, this Predictor holds {type(self.model).__name__}; "
                "adapt with backend='eager' (compiled models cannot be fine-tuned)"
            )
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {seed!r} ({type(seed).__name__})")
        given = {"steps": steps, "lr": lr, "parts": parts}
        config = adapt_config(**{k: v for k, v in given.items() if v is not None}, **options)
        adapted: dict[int, nn.Module] = {}
        for c in support.classes or [1]:
            masks = (support.masks == c).float() if support.classes else support.masks
            if len(support.classes) > 1:
                log.info("adapting a copy for label %d", c)
            adapted[c] = adapt_model(self.model, support.images, masks, config, seed=int(seed), progress=progress)
        self._adapted = adapted
        return self

    def reset(self) -> Predictor:
        """Drop the adapted copy: predict with the original model again (the support set stays)."""
        self._adapted = {}
        return self

    @property
    def adapted(self) -> bool:
        """Whether predictions use a copy adapted to the current support set (:meth:`adapt`)."""
        return bool(self._adapted)

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
            target: An image (array ``(H, W)``/``(H, W, 3)``, tensor ``(H, W)``/``(1|3, H, W)``, PIL
                image, path, :class:`~universeg_plus.io.inputs.Named`), a list of same-size images, or
                a stacked ``(N, H, W)`` array / ``(N, 1, H, W)`` tensor.
            threshold: Foreground probability cut-off in (0, 1).
            ensemble: Number of support subsets whose probabilities are averaged (an int, not a bool).
            support_size: Examples per subset (default: all, or half of the set when ensembling).
            flips: Also predict on horizontally/vertically flipped inputs and average.
            seed: Seed of the subset draw.

        Returns:
            :class:`Prediction` at the original size (a leading ``N`` axis for a batch).

        Raises:
            RuntimeError: :meth:`set_support` was not called.
            ValueError / TypeError: bad target or option values (named); a list of images of
                different sizes (use :meth:`predict_many`).
        """
        support = self.support
        options = self.check_options(threshold, ensemble, support_size, flips, seed)
        items, batched = as_batch(target, "target")
        arrays = [image_array(t, "target", _target_name(t, i, batched)) for i, t in enumerate(items)]
        sizes = {a.shape for a in arrays}
        if batched and len(sizes) > 1:
            raise ValueError(
                f"batch targets differ in size {sorted(sizes)}; use predictor.predict_many(), which returns a list"
            )
        preds = self._run(arrays, support, *options)
        if not batched:
            return preds[0]
        return Prediction(
            np.stack([p.probabilities for p in preds]), np.stack([p.mask for p in preds]), preds[0].classes
        )

    def predict_many(self, targets: Sequence[Any], **kwargs: Any) -> list[Prediction]:
        """Like :meth:`predict` for a list of images of any sizes; one :class:`Prediction` each."""
        support = self.support
        options = self.check_options(**_predict_kwargs(kwargs))
        items, _ = as_batch(targets, "target", single=False)
        arrays = [image_array(t, "target", _target_name(t, i, True)) for i, t in enumerate(items)]
        return self._run(arrays, support, *options)

    def predict_volume(self, volume: Any, axis: int = 2, **kwargs: Any) -> Prediction:
        """Segment a 3D volume slice by slice along ``axis``.

        Args:
            volume: ``(X, Y, Z)`` array/tensor, a NIfTI/``.npy`` path or a
                :class:`~universeg_plus.io.inputs.Named` one.
            axis: Slicing axis (0, 1 or 2).
            **kwargs: As :meth:`predict`.

        Returns:
            :class:`Prediction` with ``mask`` shaped like the volume and ``probabilities`` like the volume
            (``(C, X, Y, Z)`` for several classes).
        """
        from .io.nifti import volume_slices

        support = self.support
        options = self.check_options(**_predict_kwargs(kwargs))
        ax = as_count(axis, "axis", 0, 2)
        name = volume.name if isinstance(volume, Named) else (str(volume) if isinstance(volume, (str, os.PathLike)) else "")
        vol = volume_array(volume, "target volume", name)
        slices = volume_slices(vol, ax)
        where = f"{name or 'volume'} slice {{}} along axis {ax}"
        arrays = [image_array(slices[k], "target", where.format(k)) for k in range(len(slices))]
        preds = self._run(arrays, support, *options)
        mask = np.moveaxis(np.stack([p.mask for p in preds]), 0, ax)
        probs = np.stack([p.probabilities for p in preds])  # (D, H, W) or (D, C, H, W)
        probs = np.moveaxis(probs, 0, ax) if probs.ndim == 3 else np.moveaxis(np.moveaxis(probs, 1, 0), 1, ax + 1)
        return Prediction(probs, mask, preds[0].classes)

    def predict_file(
        self,
        path: str | os.PathLike | Named,
        out_path: str | os.PathLike | None = None,
        *,
        axis: int = 2,
        probabilities_path: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> Prediction:
        """Segment an image or volume file and write the label map as the same kind of file, atomically.

        PNG/JPEG/TIFF/BMP and 2D NPY -> PNG label map (values as they are: 0, 1, 2...); NIfTI ->
        NIfTI label volume with the input's affine and header (integer dtype, no scaling); 3D NPY ->
        NPY. Volumes are segmented slice by slice along ``axis``.

        Args:
            path: The file (or a :class:`~universeg_plus.io.inputs.Named` path).
            out_path: Where to write; default ``<stem>_mask<suffix>`` beside the input. Its suffix may
                also be another fitting kind (``.npy`` for any input, ``.nii``/``.nii.gz`` for volumes).
            axis: Slicing axis of a volume.
            probabilities_path: Also write the probabilities there as ``.npy`` (float32; a class axis
                first for several labels).
            **kwargs: As :meth:`predict`.

        Returns:
            The :class:`Prediction`, with ``path`` the file written.

        Raises:
            FileNotFoundError / ValueError: missing or unreadable file, an output suffix that does not
                fit, an output that is the input, bad options. Nothing is written then.
        """
        self.check_options(**_predict_kwargs(kwargs))
        src = read_input(path)
        dest = Path(out_path) if out_path is not None else src.path.with_name(
            f"{file_stem(src.path)}_mask{src.output_suffixes[0]}"
        )
        if not dest.name.lower().endswith(src.output_suffixes):
            what = "volume" if src.is_volume else "2D image"
            raise ValueError(
                f"cannot write the mask of the {what} {src.name} to {dest.name}: the output must end in "
                f"{', '.join(src.output_suffixes)}"
            )
        if dest.resolve() == src.path.resolve() or (
            probabilities_path is not None and Path(probabilities_path).resolve() in (src.path.resolve(), dest.resolve())
        ):
            raise ValueError(f"refusing to overwrite {src.path}: choose another output path")
        if probabilities_path is not None and not str(probabilities_path).lower().endswith(".npy"):
            raise ValueError(f"probabilities_path must end in .npy, got {probabilities_path}")
        named = Named(src.data, src.name)
        pred = self.predict_volume(named, axis=axis, **kwargs) if src.is_volume else self.predict(named, **kwargs)
        pred.path = write_labels(dest, pred.mask, src.nifti)
        if probabilities_path is not None:
            write_npy(probabilities_path, pred.probabilities)
        return pred

    def check_options(
        self,
        threshold: float = 0.5,
        ensemble: int = 1,
        support_size: int | None = None,
        flips: bool = False,
        seed: int = 0,
    ) -> tuple[float, int, int | None, bool, int]:
        """Check prediction options against the current support set without predicting.

        Returns:
            The options, normalised.

        Raises:
            RuntimeError: no support set. TypeError / ValueError: an option of the wrong type or out of
            range (``ensemble=True`` is refused: bools are not counts).
        """
        support = self.support
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a number in (0, 1), got {threshold!r} ({type(threshold).__name__})")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        ensemble = as_count(ensemble, "ensemble", 1, note=" (the number of support subsets averaged)")
        if support_size is not None:
            support_size = as_count(support_size, "support_size", 1, len(support), " (the support set size)")
        if not isinstance(flips, (bool, np.bool_)):
            raise TypeError(f"flips must be True or False, got {flips!r} ({type(flips).__name__})")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {seed!r} ({type(seed).__name__})")
        self._subsets(support, ensemble, support_size, int(seed))
        return float(threshold), ensemble, support_size, bool(flips), int(seed)

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
        """``targets``: ``(H, W)`` float32 finite images (from :func:`~universeg_plus.io.inputs.image_array`)."""
        subsets = self._subsets(support, ensemble, support_size, seed)
        classes = support.classes or [1]
        x = torch.stack([standardize_image(torch.from_numpy(t), self.input_size)[None] for t in targets])
        probs = torch.stack(
            [
                self._probabilities(
                    self._adapted.get(c, self.model), x, support.images, (support.masks == c).float(), subsets, flips
                )
                for c in classes
            ],
            dim=1,
        )  # (N, C, h, w)
        out = []
        for i, t in enumerate(targets):
            p = probabilities_to_size(probs[i], t.shape[:2])
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
        model: Any,
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
                        model,
                        x.flip(dims) if dims else x, si.flip(dims) if dims else si, sl.flip(dims) if dims else sl
                    )
                    total += (p.flip(dims) if dims else p) * len(chunk)
                    weight += len(chunk)
        return total / weight

    def _forward_batches(self, model: Any, x: torch.Tensor, si: torch.Tensor, sl: torch.Tensor) -> torch.Tensor:
        batching = {"batch_size": self._fixed_b, "pad_batch": True} if self._fixed_b else {"max_pairs": self.max_pairs}
        return predict_probabilities(model, x, si, sl, device=self.device, **batching)[:, 0]


def _predict_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"threshold", "ensemble", "support_size", "flips", "seed"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    return kwargs


def _target_name(x: Any, i: int, batched: bool) -> str:
    if isinstance(x, Named):
        return x.name
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    return f"#{i}" if batched else ""


def _load_named(name: str | None, pretrained: bool | None) -> nn.Module:
    from .factory import create_model
    from .registry import default_model_name, list_models

    if pretrained is not None and not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True, False or None, got {pretrained!r}")
    name = default_model_name() if name is None else name
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    with_weights = list_models(pretrained=True)
    if pretrained is None and name not in with_weights:
        raise ValueError(
            f"model {name!r} has no pretrained weights, so its masks would be noise; models with weights: "
            f"{', '.join(with_weights) or 'none'}. To use {name!r} with random weights anyway, pass "
            "pretrained=False (CLI: --random-weights)"
        )
    if pretrained is False:
        log.warning("%r is randomly initialised (pretrained=False): its masks are meaningless", name)
    else:
        log.info("model %r with its pretrained weights", name)
    return create_model(name, pretrained=pretrained is not False)


def segment(
    target: Any,
    support_images: Sequence[Any],
    support_masks: Sequence[Any],
    model: nn.Module | str | None = None,
    device: str | torch.device | None = None,
    *,
    pretrained: bool | None = None,
    max_labels: int | None = MAX_LABELS,
    **kwargs: Any,
) -> Prediction:
    """One call from images to a mask.

    Args:
        target: Image(s) to segment (see :meth:`Predictor.predict`).
        support_images: Labelled example images (arrays, tensors, PIL images or paths).
        support_masks: Their masks (binary or integer label maps).
        model: A model, a registered name, or ``None`` for the best model with trained weights
            (:func:`universeg_plus.registry.default_model_name`).
        device: Torch device.
        pretrained: For a name without trained weights, ``False`` says random weights are wanted
            (see :class:`Predictor`).
        max_labels: Most labels one support mask may hold (``None``: no limit).
        **kwargs: ``threshold``, ``ensemble``, ``support_size``, ``flips``, ``seed``.

    Returns:
        :class:`Prediction` at the target's original size.
    """
    predict_kwargs = _predict_kwargs(kwargs)
    predictor = Predictor(model, device=device, pretrained=pretrained)
    support = SupportSet.from_arrays(support_images, support_masks, size=predictor.input_size, max_labels=max_labels)
    return predictor.set_support(support).predict(target, **predict_kwargs)
