"""The Predictor: any image in, a mask out at the image's original size.

::

    predictor = Predictor()                      # the best model with trained weights
    predictor.set_support(SupportSet.from_folder("labelled/"))
    pred = predictor.predict("scan.png", ensemble=4, support_size=16)
    pred.mask            # (H, W) uint8 label map at the scan's size
    pred.probabilities   # (H, W) float32 foreground probability ((C, H, W) for C classes)
    predictor.predict_file("ct.nii.gz", "ct_mask.nii.gz")   # same kind of file back, atomically

    tiled = Predictor(inferer=Tiles(scale=1.0, overlap=0.5))   # native resolution, in windows
    tiled.set_support(images, masks)             # the examples at their own sizes

    predictor.set_support(rgb_images, masks, colour="auto")   # colour: a projection learned per task

Multi-class support sets are segmented one-vs-rest per class; the label map takes the most probable
class per pixel, background where every class is below ``threshold``.

This module is the user-facing API only: inputs go through :mod:`universeg_plus.io.inputs` (the
rules training uses; errors name the input, ``target #2``, ``target scan.png``), the options are
checked once into :class:`~universeg_plus.options.PredictOptions`, an inferer
(:mod:`universeg_plus.inferers`: ``Resize``, ``Tiles``, ``Slices``) covers each image, and the engine
(:class:`universeg_plus.inference.Engine`) runs the ensemble / chunk / flip / batch loop in bounded
memory. ``docs/architecture.md`` draws the road of one call.
"""

from __future__ import annotations

import dataclasses
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

from .colour import LUMA, ColourProjection, check_colour, fit_colour
from .devices import AUTO, resolve_device
from .inference import Engine
from .inferers import Inferer, Resize, Slices, SupportData, Tiles
from .io.images import file_stem, write_labels, write_npy
from .io.inputs import MAX_LABELS, Named, as_batch, as_count, image_array, read_input, read_pairs, volume_array
from .options import PredictOptions
from .support import SupportSet, example_name
from .uncertainty import (
    AugmentedEngine,
    Calibration,
    ModelCalibration,
    SampleSpec,
    draw_plan,
    label_map,
    model_calibration,
    summarize_samples,
)

__all__ = ["PredictOptions", "Prediction", "Predictor", "Resize", "Slices", "Tiles", "segment"]

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
        sample_masks: With ``samples=K > 1``: ``(K, H, W)`` label maps, K plausible masks (the first
            the plain prediction); ``(K, N, H, W)`` for a batch, ``(K, *volume)`` for a volume.
            ``None`` otherwise. ``probabilities`` and ``mask`` are then those of the plain prediction
            (the whole support set, no augmentation: the mean of the K had lower Dice), its
            probabilities calibrated on the support set itself (a Platt map fitted on its
            leave-one-out predictions, :mod:`universeg_plus.uncertainty.support_calibration`).
        uncertainty: With ``samples=K > 1``: float32 in [0, 1] shaped like ``mask``: the probability
            that the mask is wrong at the pixel (``1 - p`` inside it, ``p`` outside, with ``p`` the
            calibrated probability; :mod:`universeg_plus.uncertainty`).
        regions: With ``samples=K > 1``: the connected high-uncertainty regions of a 2D image, ranked
            by area x mean uncertainty (:class:`~universeg_plus.uncertainty.Region`); one list per
            image of a batch or slice of a volume.
        uncertainty_score: With ``samples=K > 1``: expected ``1 - Dice`` of the mask under the model's
            own probability, in [0, 1] (an array: one per image of a batch, per slice of a volume):
            review the highest first.
        method: The method that gave the mask (``method="auto"``: the one it chose; see
            :mod:`universeg_plus.methods`).
        method_scores: ``method="auto"``: leave-one-out Dice on the support set per method tried
            (``"2:unet"`` keys with several labels); else empty.
        colour: How RGB became the one channel the network takes: ``"luma"`` (the input rules' grey,
            also for grey images), ``"fisher"``, ``"red"``, ``"green"`` or ``"blue"``
            (``set_support(..., colour=...)``, :mod:`universeg_plus.colour`).
        colour_scores: ``colour="auto"``: leave-one-out Dice on the support set per projection; else empty.
        calibration: The map that turned the model's probabilities into ``probabilities``
            (:class:`~universeg_plus.uncertainty.Calibration`; ``calibration.inverse()`` undoes it),
            ``None`` where none was applied; with ``samples=K`` and several labels, one per class.
            For a batch or a volume, the first image's (with ``samples=K``, the support set's: the same
            for every image).
    """

    probabilities: np.ndarray
    mask: np.ndarray
    classes: list[int] = field(default_factory=lambda: [1])
    path: Path | None = None
    sample_masks: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    regions: list[Any] = field(default_factory=list)
    uncertainty_score: float | np.ndarray | None = None
    method: str = "incontext"
    method_scores: dict[str, float] = field(default_factory=dict)
    colour: str = "luma"
    colour_scores: dict[str, float] = field(default_factory=dict)
    calibration: Calibration | list[Calibration] | None = None


def _model_io(model: Any) -> tuple[tuple[int, int], int | None, int | None]:
    size = getattr(model, "image_size", None) or model.config.input_size
    return (int(size[0]), int(size[1])), getattr(model, "support_size", None), getattr(model, "batch_size", None)


class Predictor:
    """Segment images from a support set (SamPredictor-style: set the support once, predict many).

    Args:
        model: A network following the model contract, a compiled model, a registered name, a
            weights folder, or ``None`` for :func:`universeg_plus.registry.default_model_name` (the
            best model with trained weights); names and folders go through
            :func:`universeg_plus.factory.load_model`.
        device: ``"auto"`` (CUDA when available, else CPU) or a torch device; default: ``"auto"`` for a
            model name or folder (the CPU for ``backend="tvm"``, whose default target is the host CPU),
            the model's own device for a model object. One that does not exist here is a
            ``RuntimeError`` (:func:`universeg_plus.devices.resolve_device`).
        backend: ``"eager"`` or ``"tvm"`` (compiles through :func:`universeg_plus.backends.compile`).
        support_chunk: Largest support subset sent through the network at once.
        max_pairs: Upper bound on ``batch * support`` per forward pass.
        inferer: How images are covered: :class:`~universeg_plus.inferers.Resize` (default, the whole
            image at the model size) or :class:`~universeg_plus.inferers.Tiles` (windows at native
            resolution); ``predict(..., inferer=...)`` overrides it for one call.
        calibration: ``"auto"`` (default): the calibration stored with the model's weights
            (``calibration.json``, see :mod:`universeg_plus.uncertainty.calibration`), applied to the
            reported probabilities (masks are cut before it; none when the weights have none, or
            once adapted); ``None``: raw probabilities; or a
            :class:`~universeg_plus.uncertainty.ModelCalibration`.
        pretrained: For a model name: ``None`` (default) loads its weights and refuses a name that has
            none; ``True`` loads them (error if none); ``False`` builds it with random weights.
        **compile_kwargs: Passed to :func:`universeg_plus.backends.compile` for ``backend="tvm"``.

    Raises:
        ValueError: unknown name, or a name without weights and ``pretrained`` not ``False``.
        RuntimeError: a device that does not exist here.
    """

    def __init__(
        self,
        model: nn.Module | Any | str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        backend: str = "eager",
        support_chunk: int = 64,
        max_pairs: int = 64,
        *,
        inferer: Inferer | None = None,
        calibration: ModelCalibration | str | None = "auto",
        pretrained: bool | None = None,
        **compile_kwargs: Any,
    ) -> None:
        if backend not in ("eager", "tvm"):
            raise ValueError(f"backend must be 'eager' or 'tvm', got {backend!r}")
        if compile_kwargs and backend != "tvm":
            raise TypeError(
                f"unexpected keyword argument(s) {sorted(compile_kwargs)} (compile options need backend='tvm')"
            )
        self.inferer = _check_inferer(Resize() if inferer is None else inferer)
        support_chunk = as_count(support_chunk, "support_chunk")
        max_pairs = as_count(max_pairs, "max_pairs")
        by_name = model is None or isinstance(model, (str, os.PathLike))
        # a name on the eager backend: "auto"; TVM compiles for the host CPU unless a device is named
        dev = resolve_device(AUTO if device is None and by_name and backend == "eager" else device)
        if by_name:
            from .factory import load_model

            model = load_model(model, pretrained=pretrained)
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
        if isinstance(calibration, str) and calibration == "auto":
            calibration = model_calibration(model)  # before compiling: it travels with the eager weights
        elif calibration is not None and not isinstance(calibration, ModelCalibration):
            raise TypeError(f"calibration must be 'auto', None or a ModelCalibration, got {calibration!r}")
        self.calibration = calibration
        if backend == "tvm":
            from .backends import compile as compile_tvm

            compile_kwargs.setdefault("image_size", tuple(model.config.input_size))
            model = compile_tvm(model, backend="tvm", **compile_kwargs)
        self.model = model
        self.input_size, fixed_s, fixed_b = _model_io(model)
        self.engine = Engine(model, self.device, support_chunk, max_pairs, fixed_s, fixed_b)
        self._support: SupportData | None = None
        self._prepared: dict[tuple[Inferer, int], Any] = {}
        self._adapted: dict[int, nn.Module] = {}
        self._fits: Any = None  # methods.MethodFits of the current support set, made on first use
        self._support_cals: dict[int, Calibration] = {}  # label -> leave-one-out map of the support set
        self._colour: ColourProjection | None = None  # None: the input rules' luma (colour="luma")
        self._colour_scores: dict[str, float] = {}
        #: How ``method="adapt"/"unet"/"adapt+unet"/"auto"`` train (a ``methods.MethodSettings``; ``None``: defaults).
        self.method_settings: Any = None

    @property
    def support_chunk(self) -> int:
        """Largest support subset sent through the network at once."""
        return self.engine.support_chunk

    @property
    def max_pairs(self) -> int:
        """Upper bound on ``batch * support`` per forward pass."""
        return self.engine.max_pairs

    # ------------------------------------------------------------------ support
    def set_support(
        self,
        support: SupportSet | Sequence[Any],
        masks: Sequence[Any] | None = None,
        *,
        max_labels: int | None = MAX_LABELS,
        colour: str | ColourProjection = "luma",
    ) -> Predictor:
        """Use these labelled examples for the following predictions.

        Args:
            support: A :class:`~universeg_plus.support.SupportSet` (resampled to the model size if
                needed), or the example images themselves (a list of arrays, tensors, PIL images,
                paths; any sizes) with ``masks``. Given as images, the examples are also kept at
                their own sizes, which the :class:`~universeg_plus.inferers.Tiles` inferer needs.
            masks: The masks of ``support`` images (binary or integer label maps), same sizes.
            max_labels: Most labels one mask may hold (images given with ``masks`` only).
            colour: How RGB images become the network's one channel, fitted on these examples and
                applied alike to every target (:mod:`universeg_plus.colour`): ``"luma"`` (default,
                the input rules' grey), ``"fisher"`` (the direction in RGB that best separates the
                masks' foreground from background pixels), ``"auto"`` (the best of luma, R, G, B and
                Fisher by leave-one-out Dice on the support set; needs 2+ examples to score, costs
                about 5 x S in-context passes; a grey set stays grey) or a
                :class:`~universeg_plus.colour.ColourProjection`. ``"fisher"``/``"auto"`` need the
                images with ``masks`` (a SupportSet holds them grey already). A SupportSet carries
                the projection it was made with (:attr:`SupportSet.colour`, kept by ``save``/``load``;
                ``self.support`` after a colour fit): it is used as is, or give it here for a set
                built by hand. The choice is :attr:`colour` (and ``Prediction.colour``), its scores
                :attr:`colour_scores`.

        Returns:
            ``self``.

        Raises:
            TypeError: neither a SupportSet nor images with masks; ``colour`` neither a name nor a
                ColourProjection. ValueError: bad examples (named); an unknown ``colour``;
                ``"fisher"``/``"auto"`` with a SupportSet, or a projection other than the one the
                SupportSet records; a grey example for ``"fisher"``.
        """
        colour = check_colour(colour)
        in_colour = not (isinstance(colour, str) and colour == "luma")
        native = None
        projection, scores = None, {}
        if isinstance(support, SupportSet):
            if masks is not None:
                raise TypeError("masks= goes with support images, not with a SupportSet (it holds its masks)")
            if isinstance(colour, str) and in_colour:
                raise ValueError(
                    f"colour={colour!r} learns from the support images in colour, but a SupportSet holds them "
                    f"grey already: call set_support(images, masks, colour={colour!r}) with the images themselves"
                )
            projection = colour if in_colour else support.colour
            if support.colour is not None and projection != support.colour:
                raise ValueError(
                    f"this SupportSet was made grey by the {support.colour.name} projection "
                    f"{support.colour.as_dict()}, "
                    f"not by colour={colour.as_dict() if isinstance(colour, ColourProjection) else colour!r}: "
                    "leave colour out (the set's own projection is used)"
                )
            if projection != support.colour:  # a set built by hand from projected images: record how
                support = support.with_colour(projection)
            if support.size != self.input_size:
                log.info("resampling the support set from %s to the model input size %s", support.size, self.input_size)
                support = support.resized(self.input_size)
        elif masks is not None:
            items, _ = as_batch(support, "support image", single=False)
            mask_items, _ = as_batch(masks, "support mask", single=False)
            arrays, labels = read_pairs(items, mask_items, max_labels=max_labels, keep_rgb=in_colour)
            names = [example_name(x, k) for k, x in enumerate(items)]
            if in_colour:
                projection, scores = fit_colour(colour, self.model, arrays, labels, self.input_size, names)
                # grey by the projection, or (luma kept) by the input rules themselves, bit for bit
                arrays = [(projection(a) if projection is not None else image_array(a)) if a.ndim == 3 else a
                          for a in arrays]
            native = tuple(zip(arrays, labels))
            support = SupportSet.from_arrays(arrays, labels, size=self.input_size, names=names, max_labels=max_labels)
            if projection is not None:
                support = support.with_colour(projection)
        else:
            raise TypeError(
                f"support must be a SupportSet, or images with masks=, got {type(support).__name__}; "
                "build one with SupportSet.from_arrays or call set_support(images, masks)"
            )
        if not support.classes:
            log.warning("the support set has no foreground in any mask: predictions will be (nearly) empty")
        if self._adapted:
            log.info("new support set: the adapted copy belonged to the previous one, back to the original model")
            self._adapted = {}
        self._support = SupportData(support, native)
        self._prepared = {}
        self._fits = None
        self._support_cals = {}
        self._colour, self._colour_scores = support.colour, scores
        if self._colour is not None or in_colour:
            log.info("colour projection: %s%s", self.colour.name,
                     f" (leave-one-out Dice {scores})" if scores else "")
        return self

    @property
    def colour(self) -> ColourProjection:
        """How RGB images become one channel for the current support set (``set_support(..., colour=)``):
        the input rules' luma unless a projection was asked for and chosen."""
        return self._colour or ColourProjection("luma", LUMA)

    @property
    def colour_scores(self) -> dict[str, float]:
        """``colour="auto"``: the mean leave-one-out Dice on the support set per projection; else empty."""
        return dict(self._colour_scores)

    def _target_array(self, x: Any, where: str) -> np.ndarray:
        """A target as the support set's images were made: ``(H, W)`` float32, finite (the input
        rules, then the support set's colour projection for RGB)."""
        if self._colour is None:
            return image_array(x, "target", where)
        a = image_array(x, "target", where, keep_rgb=True)
        if a.ndim == 3:
            return self._colour(a)
        raise ValueError(
            f"the target{' ' + where if where else ''} is grayscale (shape {tuple(a.shape)}), but the support set's "
            f"images were projected from colour ({self._colour.name}): give the target in colour (H, W, 3) too, "
            "or set_support(..., colour='luma')"
        )

    @property
    def support(self) -> SupportSet:
        """The current support set (at the model size); RuntimeError before :meth:`set_support`."""
        return self._support_data.examples

    @property
    def _support_data(self) -> SupportData:
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
        *,
        inferer: Inferer | Slices | None = None,
        **options: Any,
    ) -> Predictor:
        """Fine-tune a copy of the model on the current support set (test-time adaptation).

        Episodes come from the support set alone (leave-k-out, augmented), drawn as ``inferer`` shows
        the network its inputs: :class:`~universeg_plus.inferers.Resize` adapts on the examples at the
        model size (:func:`universeg_plus.adapt.adapt_model`), :class:`~universeg_plus.inferers.Tiles`
        on windows cut from the native-size examples at its scale
        (:func:`universeg_plus.adapt.adapt_on_windows`: thin structures keep their width in pixels).
        See :class:`~universeg_plus.adapt.AdaptConfig` for the defaults (300 steps, lr 1e-3, 64x64
        crops: about the wall time of training the per-task U-Net of ``universeg-plus evaluate
        --baseline``). Later predictions use the adapted copy with the full support set, whatever the
        inferer; the original model is never changed, :meth:`reset` returns to it, and
        :meth:`set_support` with a new set does too. A multi-label set adapts one copy per label.

        Args:
            steps: Adam steps (default: ``AdaptConfig.steps``).
            lr: Peak learning rate (default: ``AdaptConfig.lr``).
            seed: Seeds episodes and augmentation (same support + seed -> same weights).
            parts: ``"all"``, ``"decoder"``, ``"encoder"`` or ``"last"`` (default ``"all"``).
            progress: Show a progress bar with the loss.
            inferer: The inferer the adapted copy will predict with (default: the Predictor's; for
                ``Slices``, the one covering each slice); a ``Tiles`` one needs
                ``set_support(images, masks)`` (the examples at their own sizes).
            **options: Other :class:`~universeg_plus.adapt.AdaptConfig` fields (``batch_size``, ``crop`` ...).

        Returns:
            ``self``, adapted.

        Raises:
            RuntimeError: no support set yet.
            TypeError: a compiled model (adapt the eager model, then compile the copy), an inferer that
                is not one, or bad option types.
            ValueError: option values out of range; ``Tiles`` without the native-size examples.
        """
        from .adapt import adapt_config

        support = self.support
        inner = _check_inferer(inferer.inferer if isinstance(inferer, Slices) else inferer or self.inferer)
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
            if len(support.classes) > 1:
                log.info("adapting a copy for label %d", c)
            adapted[c] = inner.adapt(self.model, self._support_data, c, self.input_size, config, int(seed), progress)
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
        samples: int = 1,
        *,
        method: str = "incontext",
        time_budget_s: float | None = None,
        inferer: Inferer | Slices | None = None,
        options: PredictOptions | None = None,
    ) -> Prediction:
        """Segment one image, or a batch of same-size images.

        Args:
            target: An image (array ``(H, W)``/``(H, W, 3)``, tensor ``(H, W)``/``(1|3, H, W)``, PIL
                image, path, :class:`~universeg_plus.io.inputs.Named`), a list of same-size images, or
                a stacked ``(N, 1, H, W)`` array/tensor. A bare ``(N, H, W)`` array is refused as
                ambiguous (N images, slices or channels?): see :meth:`predict_many` and
                :meth:`predict_volume`.
            threshold: Foreground probability cut-off in (0, 1).
            ensemble: Number of support subsets whose probabilities are averaged (an int, not a bool).
            support_size: Examples per subset (default: all, or half of the set when ensembling).
            flips: Also predict on horizontally/vertically flipped inputs and average.
            seed: Seed of the subset draw (and of the sampling plan).
            samples: K > 1 draws K plausible masks (support subsets, paired intensity/geometry
                augmentations of target and support, probability levels; the first is the plain
                prediction, :func:`~universeg_plus.uncertainty.draw_plan`) and fills
                ``sample_masks``, ``uncertainty``, ``regions`` and ``uncertainty_score``;
                ``probabilities``/``mask`` stay the plain prediction's, calibrated on the support set.
                Costs about K plain predictions plus one per support example (the calibration).
            method: ``"incontext"`` (the network with the support set), ``"ensemble"``, ``"adapt"``,
                ``"unet"``, ``"adapt+unet"``, or ``"auto"`` (chosen by leave-one-out on the support set
                within ``time_budget_s``); see ``docs/methods.md``. A trained method trains on the
                first call and is kept for the next ones (per support set and label); whole images
                only (the default ``Resize`` inferer); ``ensemble``/``support_size``/``flips``/``samples``
                apply to ``"incontext"``.
            time_budget_s: Seconds ``"auto"`` may spend choosing and fitting, per label (``None``: no limit).
            inferer: This call's inferer (default: the Predictor's); a
                :class:`~universeg_plus.inferers.Slices` one makes ``target`` a volume.
            options: The options above as one checked :class:`~universeg_plus.options.PredictOptions`
                (then leave them at their defaults).

        Returns:
            :class:`Prediction` at the original size (a leading ``N`` axis for a batch).

        Raises:
            RuntimeError: :meth:`set_support` was not called.
            ValueError / TypeError: bad target or option values (named); a list of images of
                different sizes (use :meth:`predict_many`).
        """
        self._support_data  # noqa: B018 - out of order is said first
        opts = _options(options, threshold=threshold, ensemble=ensemble, support_size=support_size, flips=flips,
                        seed=seed, samples=samples, method=method, time_budget_s=time_budget_s)
        if isinstance(inferer, Slices):
            return self._predict_volume(target, inferer, opts)
        return self._predict_images(target, _check_inferer(inferer or self.inferer), opts)

    def predict_many(self, targets: Sequence[Any], **kwargs: Any) -> list[Prediction]:
        """Like :meth:`predict` for a list (or ``(N, H, W)`` stack) of images of any sizes; one
        :class:`Prediction` each."""
        self._support_data  # noqa: B018
        inferer = _check_inferer(kwargs.pop("inferer", None) or self.inferer)
        opts = _options(kwargs.pop("options", None), **kwargs)
        items, _ = as_batch(targets, "target", single=False)
        arrays = [self._target_array(t, _target_name(t, i, True)) for i, t in enumerate(items)]
        return self._run(arrays, inferer, opts)

    def predict_volume(self, volume: Any, axis: int = 2, **kwargs: Any) -> Prediction:
        """Segment a 3D volume slice by slice along ``axis`` (the :class:`~universeg_plus.inferers.Slices` inferer).

        Args:
            volume: ``(X, Y, Z)`` array/tensor, a NIfTI/``.npy`` path or a
                :class:`~universeg_plus.io.inputs.Named` one.
            axis: Slicing axis (0, 1 or 2).
            **kwargs: As :meth:`predict` (``inferer=`` covers each slice).

        Returns:
            :class:`Prediction` with ``mask`` shaped like the volume and ``probabilities`` like the volume
            (``(C, X, Y, Z)`` for several classes).
        """
        self._support_data  # noqa: B018
        inner = _check_inferer(kwargs.pop("inferer", None) or self.inferer)
        opts = _options(kwargs.pop("options", None), **kwargs)
        return self._predict_volume(volume, Slices(axis, inner), opts)

    def predict_file(
        self,
        path: str | os.PathLike | Named,
        out_path: str | os.PathLike | None = None,
        *,
        axis: int = 2,
        probabilities_path: str | os.PathLike | None = None,
        inferer: Inferer | None = None,
        options: PredictOptions | None = None,
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
            inferer: This call's inferer (default: the Predictor's).
            options: Checked options instead of ``**kwargs``.
            **kwargs: As :meth:`predict`.

        Returns:
            The :class:`Prediction`, with ``path`` the file written.

        Raises:
            FileNotFoundError / ValueError: missing or unreadable file, an output suffix that does not
                fit, an output that is the input, bad options. Nothing is written then.
        """
        opts = _options(options, **kwargs)
        inner = _check_inferer(inferer or self.inferer)
        ax = as_count(axis, "axis", 0, 2)
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
        if src.is_volume:
            pred = self._predict_volume(named, Slices(ax, inner), opts)
        else:
            pred = self._predict_images(named, inner, opts)
        pred.path = write_labels(dest, pred.mask, src.nifti)
        if probabilities_path is not None:
            write_npy(probabilities_path, pred.probabilities)
        return pred

    def check_options(self, **kwargs: Any) -> PredictOptions:
        """Check prediction options (those of :meth:`predict`) against the current support set and
        inferer without predicting.

        Returns:
            The checked :class:`~universeg_plus.options.PredictOptions` (pass it as ``options=``).

        Raises:
            RuntimeError: no support set. TypeError / ValueError: an option of the wrong type or out of
            range (``ensemble=True`` is refused: bools are not counts), or one the inferer cannot use.
        """
        support = self._support_data
        inferer = _check_inferer(kwargs.pop("inferer", None) or self.inferer)
        opts = _options(kwargs.pop("options", None), **kwargs)
        inferer.check(support, opts, self.engine)
        _check_method_inferer(opts, inferer)
        return opts

    # ------------------------------------------------------------------ internals
    def _predict_images(self, target: Any, inferer: Inferer, options: PredictOptions) -> Prediction:
        items, batched = as_batch(target, "target")
        arrays = [self._target_array(t, _target_name(t, i, batched)) for i, t in enumerate(items)]
        sizes = {a.shape for a in arrays}
        if batched and len(sizes) > 1:
            raise ValueError(
                f"batch targets differ in size {sorted(sizes)}; use predictor.predict_many(), which returns a list"
            )
        preds = self._run(arrays, inferer, options)
        if not batched:
            return preds[0]
        out = Prediction(
            np.stack([p.probabilities for p in preds]), np.stack([p.mask for p in preds]), preds[0].classes,
            method=preds[0].method, method_scores=preds[0].method_scores, colour=preds[0].colour,
            colour_scores=preds[0].colour_scores, calibration=preds[0].calibration,
        )
        return _with_samples(out, preds, lambda maps: np.stack(maps))

    def _predict_volume(self, volume: Any, slices: Slices, options: PredictOptions) -> Prediction:
        name = volume.name if isinstance(volume, Named) else (str(volume) if isinstance(volume, (str, os.PathLike)) else "")
        planes = slices.split(volume_array(volume, "target volume", name))
        where = f"{name or 'volume'} slice {{}} along axis {slices.axis}"
        arrays = [self._target_array(planes[k], where.format(k)) for k in range(len(planes))]
        preds = self._run(arrays, slices.inferer, options)
        out = Prediction(slices.merge([p.probabilities for p in preds]), slices.merge([p.mask for p in preds]),
                         preds[0].classes, method=preds[0].method, method_scores=preds[0].method_scores,
                         colour=preds[0].colour, colour_scores=preds[0].colour_scores,
                         calibration=preds[0].calibration)
        return _with_samples(out, preds, slices.merge)

    def _run(self, arrays: list[np.ndarray], inferer: Inferer, options: PredictOptions) -> list[Prediction]:
        """``arrays``: ``(H, W)`` float32 finite images. One-vs-rest per class, then the label map."""
        support = self._support_data
        plan = inferer.check(support, options, self.engine)
        _check_method_inferer(options, inferer)
        if options.samples > 1:
            return self._run_samples(arrays, inferer, options, plan)
        classes = support.classes
        methods: dict[int, Any] = {}  # label -> methods.MethodEngine, for method != "incontext"
        per_class = [self._class_maps(arrays, inferer, c, plan, options, methods=methods) for c in classes]
        used, scores = options.method, {}
        if methods:
            from .methods import summarize_engines

            used, scores = summarize_engines(methods)
        # calibration was fitted for the shipped in-context model, not for a trained method
        cal = self._calibration(1) if not methods else Calibration()
        out = []
        for i in range(len(arrays)):
            p = np.stack([maps[i] for maps in per_class])  # (C, H, W)
            mask = label_map(p, classes, options.threshold)  # the model's decision, before calibration
            p = cal(p)
            out.append(Prediction(p[0] if len(classes) == 1 else p, mask, list(classes), method=used,
                                  method_scores=dict(scores), colour=self.colour.name,
                                  colour_scores=self.colour_scores, calibration=None if cal.identity else cal))
        return out

    def _class_maps(
        self, arrays: list[np.ndarray], inferer: Inferer, label: int, plan: Any, options: PredictOptions,
        view: SampleSpec | None = None, methods: dict[int, Any] | None = None,
    ) -> list[np.ndarray]:
        """One label's ``(H, W)`` probability maps, through one sample's view (augmented engine) if given;
        with ``options.method != "incontext"``, through that method (its engine lands in ``methods``)."""
        key = (inferer, label)
        if key not in self._prepared:
            self._prepared[key] = inferer.prepare(self._support_data, label, self.input_size)
        engine: Any = self.engine.with_model(self._adapted.get(label, self.model))
        if view is not None:
            engine = AugmentedEngine(engine, view)
        if options.method != "incontext" and methods is not None:
            engine = methods[label] = self._method_fits(options.seed).engine(label, options.method,
                                                                             options.time_budget_s)
        return inferer.probabilities(arrays, self._prepared[key], plan, engine, options)

    def _method_fits(self, seed: int) -> Any:
        """The :class:`~universeg_plus.methods.MethodFits` of the current support set (new for a new
        support set, seed or ``method_settings``)."""
        from .methods import MethodFits

        fits = self._fits
        if fits is None or fits.seed != seed or fits.given is not self.method_settings:
            self._fits = MethodFits(self.model, self.method_settings, seed=seed)
        return self._fits

    def _calibration(self, samples: int) -> Calibration:
        if self.calibration is None or self._adapted:  # fitted for the model as shipped, not an adapted copy
            return Calibration()
        return self.calibration.for_samples(samples)

    def _support_calibration(self, label: int) -> Calibration:
        """The map for ``samples=K`` probabilities of ``label``: fitted on the support set's leave-one-out
        predictions (:mod:`universeg_plus.uncertainty.support_calibration`, cached per support set);
        the stored map where the set cannot calibrate itself (one example, no foreground, a compiled
        model with a fixed support size); none for an adapted copy (it has seen the support set)."""
        if self._adapted:
            return Calibration()
        fallback = self._calibration(1)
        if self.engine.fixed_support:
            return fallback
        if label not in self._support_cals:
            from .uncertainty import leave_one_out_calibration

            support = self._support_data.examples
            masks = (support.masks == label).float() if support.classes else support.masks.float()
            engine = self.engine.with_model(self.model)
            self._support_cals[label] = leave_one_out_calibration(
                lambda x, si, sl: engine.probabilities(x, si, sl), support.images, masks, fallback
            )
        return self._support_cals[label]

    def _run_samples(
        self, arrays: list[np.ndarray], inferer: Inferer, options: PredictOptions, plan: Any
    ) -> list[Prediction]:
        """K views per image (:mod:`universeg_plus.uncertainty`), summarised at each image's size.

        Each view runs the inferer through an :class:`~universeg_plus.uncertainty.AugmentedEngine`
        (its augmentation on target and support alike, whatever covers the image); with
        :class:`~universeg_plus.inferers.Resize` it also uses its own support subset (other inferers
        keep their own support, e.g. every support window).
        """
        support = self._support_data
        classes = support.classes
        n = len(support.examples)
        size = options.support_size
        fixed = self.engine.fixed_support
        if size is None and fixed:  # a compiled model takes multiples of its support size
            size = min(n, fixed * max(1, math.ceil(0.75 * n) // fixed))
        h, w = self.input_size
        views = draw_plan(n, options.samples, size, square=h == w, seed=options.seed)
        single = dataclasses.replace(options, samples=1)
        maps = []  # per view, per class: one (H, W) map per image
        for view in views:
            sub = [list(view.indices)] if isinstance(inferer, Resize) else plan
            maps.append([self._class_maps(arrays, inferer, c, sub, single, view) for c in classes])
        cals = [self._support_calibration(c) for c in classes]
        out = []
        for i in range(len(arrays)):
            k_maps = np.stack([np.stack([per_class[c][i] for c in range(len(classes))]) for per_class in maps])
            summary = summarize_samples(
                k_maps, classes, options.threshold, cals, levels=[view.level for view in views], point=0,
            )
            out.append(
                Prediction(
                    summary.mean[0] if len(classes) == 1 else summary.mean, summary.mean_mask, list(classes),
                    sample_masks=summary.masks, uncertainty=summary.uncertainty, regions=summary.regions,
                    uncertainty_score=summary.score, colour=self.colour.name, colour_scores=self.colour_scores,
                    calibration=(cals[0] if not cals[0].identity else None) if len(cals) == 1 else list(cals),
                )
            )
        return out


def _with_samples(out: Prediction, preds: list[Prediction], merge: Any) -> Prediction:
    """``out`` (a batch or volume of ``preds``) with the sampled fields of ``preds`` merged alike."""
    if preds[0].sample_masks is None:
        return out
    k = preds[0].sample_masks.shape[0]
    out.sample_masks = np.stack([merge([p.sample_masks[j] for p in preds]) for j in range(k)])
    out.uncertainty = merge([p.uncertainty for p in preds])
    out.regions = [p.regions for p in preds]
    out.uncertainty_score = np.asarray([p.uncertainty_score for p in preds], dtype=np.float32)
    return out


def _check_method_inferer(options: PredictOptions, inferer: Inferer) -> None:
    if options.method != "incontext" and not isinstance(inferer, Resize):
        raise ValueError(
            f"method={options.method!r} segments whole images (the Resize inferer); "
            f"{type(inferer).__name__} predicts in-context only"
        )


def _check_inferer(inferer: Any) -> Inferer:
    if isinstance(inferer, Slices):
        raise TypeError("Slices covers volumes: use predict_volume(volume, axis) or predict(volume, inferer=Slices(...))")
    if not isinstance(inferer, Inferer):
        raise TypeError(f"inferer must be Resize(), Tiles(...) or another Inferer, got {type(inferer).__name__}")
    return inferer


def _options(options: PredictOptions | None, **kwargs: Any) -> PredictOptions:
    """The options of one call, checked once: given whole (``options=``) or as keywords."""
    if options is None:
        return PredictOptions.from_kwargs(kwargs)
    if not isinstance(options, PredictOptions):
        raise TypeError(f"options must be a PredictOptions, got {type(options).__name__}")
    given = {k: v for k, v in kwargs.items() if v != getattr(PredictOptions, k, None)}
    if given:
        raise TypeError(f"give options= or the keywords {sorted(given)}, not both")
    return options


def _target_name(x: Any, i: int, batched: bool) -> str:
    if isinstance(x, Named):
        return x.name
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    return f"#{i}" if batched else ""


def segment(
    target: Any,
    support_images: Sequence[Any],
    support_masks: Sequence[Any],
    model: nn.Module | str | None = None,
    device: str | torch.device | None = None,
    *,
    pretrained: bool | None = None,
    max_labels: int | None = MAX_LABELS,
    colour: str | ColourProjection = "luma",
    **kwargs: Any,
) -> Prediction:
    """One call from images to a mask.

    Args:
        target: Image(s) to segment (see :meth:`Predictor.predict`).
        support_images: Labelled example images (arrays, tensors, PIL images or paths).
        support_masks: Their masks (binary or integer label maps).
        model: A model, a registered name, a weights folder, or ``None`` for the best model with trained weights
            (:func:`universeg_plus.registry.default_model_name`).
        device: Torch device.
        pretrained: For a name without trained weights, ``False`` says random weights are wanted
            (see :class:`Predictor`).
        max_labels: Most labels one support mask may hold (``None``: no limit).
        colour: ``"luma"``, ``"fisher"``, ``"auto"`` or a projection (see :meth:`Predictor.set_support`).
        **kwargs: ``threshold``, ``ensemble``, ``support_size``, ``flips``, ``seed``, ``method``, ``time_budget_s``.

    Returns:
        :class:`Prediction` at the target's original size.
    """
    options = PredictOptions.from_kwargs(kwargs)
    colour = check_colour(colour)
    predictor = Predictor(model, device=device, pretrained=pretrained)
    if isinstance(colour, str) and colour == "luma":
        support = SupportSet.from_arrays(support_images, support_masks, size=predictor.input_size,
                                         max_labels=max_labels)
        return predictor.set_support(support).predict(target, options=options)
    predictor.set_support(support_images, support_masks, max_labels=max_labels, colour=colour)
    return predictor.predict(target, options=options)
