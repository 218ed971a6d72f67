"""The few-shot demo's logic in plain Python (no gradio): uploads in, overlay, probabilities, Dice, files out.

The gradio page (:mod:`universeg_plus.demo.ui`) only collects the inputs and calls
:func:`run_segmentation`; everything it shows comes from here, so this module is tested without a
browser. Errors a user can fix (bad uploads, impossible settings) are raised as ``ValueError`` with
a message that names the uploaded file by its own name, never by gradio's temporary path.

::

    cache = ModelCache()
    result = run_segmentation(
        ["a.png", "b.png"], ["a_mask.png", "b_mask.png"], "new.png", None,
        SegmentSettings(model="universeg-small"), cache, out_dir="outputs/",
    )
    result.overlay      # (H, W, 3) uint8: the target with the predicted mask coloured in
    result.files        # [<stem>_mask.png] (+ <stem>_mask.nii.gz for NIfTI targets)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.examples import default_examples_dir
from ..io.images import NIFTI_SUFFIXES, file_stem, is_volume, list_image_files, overlay_mask, read_image, write_png
from ..io.nifti import read_nifti, volume_slices, write_label_nifti
from ..metrics import dice
from ..perturb import WHERE, get_perturbation, list_perturbations
from ..perturb.where import SLOT_KIND
from ..predictor import Prediction, Predictor
from ..registry import PRETRAINED, create_model, list_models
from ..support import SupportSet, preprocess_image

__all__ = [
    "FALLBACK_MODEL",
    "MAX_MASK_LABELS",
    "NO_PERTURBATION",
    "ExampleTask",
    "ModelCache",
    "SegmentResult",
    "SegmentSettings",
    "Target",
    "available_backends",
    "default_examples_dir",
    "default_model_name",
    "dice_per_label",
    "has_pretrained",
    "list_example_tasks",
    "load_reference",
    "load_support",
    "load_target",
    "perturb_inputs",
    "perturbation_choices",
    "probability_image",
    "run_segmentation",
    "weights_warning",
]

log = logging.getLogger(__name__)

#: Default model when no registered name has pretrained weights.
FALLBACK_MODEL = "universeg-small"
#: A mask with more distinct values than this is taken for an image uploaded by mistake.
MAX_MASK_LABELS = 16
#: The perturbation choice that leaves the inputs alone.
NO_PERTURBATION = "none"
#: Slots of ``WHERE`` and the kind of data each holds.


# ---------------------------------------------------------------------- models and backends
def has_pretrained(name: str) -> bool:
    """Whether the pretrained-weights table declares weights for ``name``."""
    return name in PRETRAINED


def default_model_name(models: Sequence[str] | None = None) -> str:
    """The first of ``models`` (default: every registered name) with pretrained weights, else ``universeg-small``.

    Falls back to the first of ``models`` when ``universeg-small`` is not among them.

    Raises:
        ValueError: ``models`` is empty.
    """
    names = list(models) if models is not None else list_models()
    if not names:
        raise ValueError("the demo needs at least one model name")
    for name in names:
        if has_pretrained(name):
            return name
    return FALLBACK_MODEL if FALLBACK_MODEL in names else names[0]


def available_backends() -> list[str]:
    """``["eager"]``, plus ``"tvm"`` when Apache TVM is importable."""
    return ["eager", "tvm"] if importlib.util.find_spec("tvm") is not None else ["eager"]


def weights_warning(name: str) -> str | None:
    """The warning to show for ``name``, or ``None`` when it has pretrained weights."""
    if has_pretrained(name):
        return None
    return (
        f"No pretrained weights are declared for {name!r}: the network is randomly initialised, "
        "so its masks and Dice scores are meaningless (they only show that the pipeline runs)."
    )


def _load_network(name: str, backend: str, seed: int, device: str | torch.device | None) -> Any:
    if has_pretrained(name):
        model = create_model(name, pretrained=True)
    else:
        log.warning("no pretrained weights are declared for %r: using a random network (seed %d)", name, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model(name)
    if backend == "tvm":
        return Predictor(model, device=device, backend="tvm").model
    return model.eval()


class ModelCache:
    """Networks loaded once per ``(name, backend)`` and reused across requests (thread-safe).

    Random networks (names without pretrained weights) are initialised from torch seed ``seed``, so
    ``torch.manual_seed(seed); create_model(name)`` rebuilds the same one.

    Args:
        models: The names that may be loaded (default: every registered name).
        seed: Seed of random initialisation.
        device: Torch device of eager networks (default CPU).
        loader: ``loader(name, backend) -> network`` replacing the default (pretrained or seeded
            random weights, compiled for ``"tvm"``).
    """

    def __init__(
        self,
        models: Sequence[str] | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        loader: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.models = list(models) if models is not None else list_models()
        unknown = sorted(set(self.models) - set(list_models()))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; valid names: {', '.join(list_models())}")
        self.seed = int(seed)
        self.device = device
        self._loader = loader or (lambda name, backend: _load_network(name, backend, self.seed, device))
        self._networks: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, name: str, backend: str = "eager") -> Any:
        """The network for ``(name, backend)``, loading (and for TVM compiling) it on first use.

        Raises:
            ValueError: ``name`` is not one of :attr:`models`, or ``backend`` is not available.
        """
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(self.models)}")
        if backend not in available_backends():
            have = ", ".join(available_backends())
            raise ValueError(f"backend {backend!r} is not available here; choose one of: {have}")
        key = (name, backend)
        with self._lock:
            if key not in self._networks:
                start = time.perf_counter()
                self._networks[key] = self._loader(name, backend)
                self.loads += 1
                log.info("loaded %s (%s) in %.1f s", name, backend, time.perf_counter() - start)
            return self._networks[key]

    def predictor(self, name: str, backend: str = "eager") -> Predictor:
        """A fresh :class:`Predictor` around the cached network (no state shared between requests)."""
        network = self.get(name, backend)
        device = self.device if isinstance(network, torch.nn.Module) else None
        return Predictor(network, device=device)


# ---------------------------------------------------------------------- example tasks
@dataclass(frozen=True)
class ExampleTask:
    """A bundled task folder: ``images/`` and ``masks/`` paired by file stem.

    Attributes:
        name: The folder name.
        images: Image files, sorted by name.
        masks: The matching mask files, same order.
    """

    name: str
    images: tuple[Path, ...]
    masks: tuple[Path, ...]

    def selection(self, support_size: int = 5) -> tuple[list[Path], list[Path], Path, Path]:
        """``support_size`` evenly spaced examples as the support set and one other as the target.

        Returns:
            ``(support images, support masks, target image, target's reference mask)``.

        Raises:
            ValueError: the task has too few examples to keep one out as the target.
        """
        n = len(self.images)
        if n < 2:
            raise ValueError(f"example task {self.name} has {n} example(s); it needs at least 2")
        k = max(1, min(int(support_size), n - 1))
        pick = sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
        rest = [i for i in range(n) if i not in pick]
        target = rest[len(rest) // 2]
        return [self.images[i] for i in pick], [self.masks[i] for i in pick], self.images[target], self.masks[target]


def list_example_tasks(folder: str | os.PathLike | None) -> dict[str, ExampleTask]:
    """The task folders (each holding ``images/`` and ``masks/``) in ``folder``, by name.

    Tasks whose files do not pair up by stem are skipped with a warning; a missing or ``None``
    folder gives no tasks.
    """
    if folder is None or not Path(folder).is_dir():
        return {}
    tasks: dict[str, ExampleTask] = {}
    for sub in sorted(Path(folder).iterdir()):
        if not ((sub / "images").is_dir() and (sub / "masks").is_dir()):
            continue
        images = {file_stem(p): p for p in list_image_files(sub / "images")}
        masks = {file_stem(p): p for p in list_image_files(sub / "masks")}
        if not images or set(images) != set(masks):
            log.warning("skipping example task %s: images and masks do not pair up by file stem", sub)
            continue
        stems = sorted(images)
        tasks[sub.name] = ExampleTask(sub.name, tuple(images[s] for s in stems), tuple(masks[s] for s in stems))
    return tasks


# ---------------------------------------------------------------------- uploads
def _name(path: str | os.PathLike) -> str:
    return Path(path).name


def _friendly(exc: BaseException, paths: Sequence[str | os.PathLike]) -> str:
    """The message of ``exc`` with every full upload path replaced by the file's own name."""
    msg = str(exc)
    for p in sorted({str(p) for p in paths}, key=len, reverse=True):
        msg = msg.replace(p, _name(p))
    return msg


def _paths(files: Sequence[str | os.PathLike] | str | os.PathLike | None, what: str) -> list[Path]:
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out = []
    for f in files:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(f"{what} must be file paths, got {type(f).__name__}")
        out.append(Path(f))
    return out


def _read(path: Path, what: str) -> np.ndarray:
    try:
        return read_image(path)
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read the {what} {path.name}: {_friendly(exc, [path])}") from exc


def _as_mask(arr: np.ndarray, path: Path, what: str = "mask") -> np.ndarray:
    """The upload as a 2D label map; reject what cannot be a mask (colour images, volumes, too many values).

    Grey images saved as RGB (three equal channels) are taken as single-channel.
    """
    a = np.squeeze(arr) if arr.ndim > 2 else arr
    if a.ndim == 3 and a.shape[-1] in (3, 4) and not path.name.lower().endswith(NIFTI_SUFFIXES):
        if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
            a = a[..., 0]
        else:
            raise ValueError(
                f"the {what} {path.name} is a colour image, not a mask: save masks as single-channel label maps "
                "(0 = background, 1, 2, ... or 0/255)"
            )
    if a.ndim != 2:
        raise ValueError(f"the {what} {path.name} must be a 2D label map (H, W), got shape {arr.shape}")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"the {what} {path.name} is not numeric (dtype {a.dtype})")
    values = np.unique(a)
    if len(values) > MAX_MASK_LABELS + 1:
        raise ValueError(
            f"the {what} {path.name} has {len(values)} distinct values, which looks like an image, not a mask: "
            f"a mask is binary (0/1 or 0/255) or a label map with at most {MAX_MASK_LABELS} labels"
        )
    return a


def load_support(
    image_files: Sequence[str | os.PathLike] | None,
    mask_files: Sequence[str | os.PathLike] | None,
    size: Sequence[int],
) -> SupportSet:
    """Build the support set from uploaded files, paired in file-name order.

    Args:
        image_files: Support image files (PNG/JPEG/TIFF/BMP/NPY/2D NIfTI).
        mask_files: Their masks, one per image; sorted by file name, like the images, and paired in
            that order (so ``a.png`` goes with ``a.png`` or with ``a_mask.png``).
        size: The model input size ``(H, W)``.

    Returns:
        The :class:`SupportSet` at ``size``.

    Raises:
        ValueError: no files, counts that differ, unreadable files, an image and its mask of
            different sizes, masks that are not masks, or no foreground in any mask.
    """
    images = sorted(_paths(image_files, "support images"), key=lambda p: p.name)
    masks = sorted(_paths(mask_files, "support masks"), key=lambda p: p.name)
    if not images and not masks:
        raise ValueError("no support examples: upload support images and their masks, or load an example task")
    if len(images) != len(masks):
        raise ValueError(
            f"got {len(images)} support image(s) but {len(masks)} mask(s): upload exactly one mask per image "
            "(they are paired in file-name order)"
        )
    image_arrays, mask_arrays = [], []
    for img_path, mask_path in zip(images, masks):
        img = _read(img_path, "support image")
        if is_volume(img, img_path):
            raise ValueError(
                f"the support image {img_path.name} is a 3D volume (shape {img.shape}); upload 2D slices as support"
            )
        msk = _as_mask(_read(mask_path, "support mask"), mask_path)
        if np.squeeze(img).shape[:2] != np.squeeze(msk).shape[:2]:
            raise ValueError(
                f"the support image {img_path.name} is {_hw(img)} pixels but its mask {mask_path.name} is "
                f"{_hw(msk)}: each mask must have its image's size (pairs are matched in file-name order)"
            )
        image_arrays.append(img)
        mask_arrays.append(msk)
    try:
        support = SupportSet.from_arrays(
            image_arrays, mask_arrays, size=size, names=[file_stem(p) for p in images]
        )
    except (ValueError, TypeError) as exc:
        # from_arrays names the k-th array "image #k" / "mask #k": put the file names back
        names = {"image": [p.name for p in images], "mask": [p.name for p in masks]}
        msg = re.sub(
            r"\b(image|mask) #(\d+)\b",
            lambda m: f"{m.group(1)} {names[m.group(1)][int(m.group(2))]}",
            _friendly(exc, [*images, *masks]),
        )
        raise ValueError(msg) from exc
    if not support.classes:
        raise ValueError("none of the support masks has any foreground: there is nothing to learn to segment")
    return support


def _hw(arr: np.ndarray) -> str:
    a = np.squeeze(arr)
    return f"{a.shape[0]}x{a.shape[1]}" if a.ndim >= 2 else str(a.shape)


@dataclass
class Target:
    """The image to segment, and where it came from.

    Attributes:
        image: ``(H, W)`` or ``(H, W, 3)`` array as read (one slice for volumes).
        name: The upload's file stem.
        volume_shape: Shape of the source volume, or ``None`` for a 2D image.
        axis: Slicing axis of a volume.
        index: The slice taken from a volume.
        nifti: The nibabel image of a NIfTI upload (its grid is used for the NIfTI mask), else ``None``.
    """

    image: np.ndarray
    name: str
    volume_shape: tuple[int, ...] | None = None
    axis: int = 2
    index: int | None = None
    nifti: Any | None = None

    @property
    def is_slice(self) -> bool:
        """Whether the image is one slice of a volume."""
        return self.volume_shape is not None

    def describe(self) -> str:
        """One line: name, size and (for volumes) which slice."""
        h, w = self.image.shape[:2]
        if self.is_slice:
            return (
                f"{self.name}: slice {self.index} along axis {self.axis} of a volume of shape "
                f"{tuple(self.volume_shape)} ({h}x{w} px)"
            )
        return f"{self.name}: {h}x{w} px"


def _squeeze_volume(arr: np.ndarray) -> np.ndarray:
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def load_target(path: str | os.PathLike | None, slice_index: int | None = None, axis: int = 2) -> Target:
    """Read the target upload; for a volume (NIfTI or 3D ``.npy``) take one slice.

    Args:
        path: The uploaded file.
        slice_index: Slice of a volume to segment (``None``: the middle one); ignored for 2D images.
        axis: Slicing axis of a volume (0, 1 or 2).

    Raises:
        ValueError: no file, unreadable file, 4D data, a slice index or axis out of range.
    """
    if path is None:
        raise ValueError("no target: upload the image to segment (or load an example task)")
    p = Path(path)
    nifti = None
    try:
        if p.name.lower().endswith(NIFTI_SUFFIXES):
            arr, nifti = read_nifti(p)
        else:
            arr = read_image(p)
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot read the target {p.name}: {_friendly(exc, [p])}") from exc
    arr = _squeeze_volume(np.asarray(arr))
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"the target {p.name} is not numeric (dtype {arr.dtype})")
    if not is_volume(arr, p):
        image = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
        image = image[0] if image.ndim == 3 and image.shape[0] == 1 else image
        if image.ndim not in (2, 3):
            raise ValueError(f"the target {p.name} must be a 2D image or a 3D volume, got shape {arr.shape}")
        return Target(np.asarray(image), file_stem(p), nifti=nifti)
    if arr.ndim != 3:
        raise ValueError(f"the target {p.name} has shape {arr.shape}: only 2D images and 3D volumes are supported")
    if isinstance(axis, bool) or int(axis) not in (0, 1, 2):
        raise ValueError(f"the slicing axis must be 0, 1 or 2, got {axis!r}")
    axis = int(axis)
    slices = volume_slices(arr, axis)
    depth = slices.shape[0]
    index = depth // 2 if slice_index is None else int(slice_index)
    if not 0 <= index < depth:
        raise ValueError(
            f"slice index {index} is out of range: the target volume {p.name} has {depth} slices along axis {axis} "
            f"(0..{depth - 1})"
        )
    return Target(np.asarray(slices[index]), file_stem(p), tuple(arr.shape), axis, index, nifti)


def load_reference(path: str | os.PathLike | None, target: Target) -> np.ndarray | None:
    """Read the optional reference mask of ``target`` as an ``(H, W)`` integer label map.

    For a volume target the reference may be the label volume (the same slice is taken) or the
    slice's 2D mask. 8-bit binary masks stored as 0/255 are read as 0/1.

    Raises:
        ValueError: unreadable file, not a mask, or a size that differs from the target's.
    """
    if path is None:
        return None
    p = Path(path)
    ref = _squeeze_volume(np.asarray(_read(p, "reference mask")))
    if target.is_slice and ref.ndim == 3 and tuple(ref.shape) == tuple(target.volume_shape):
        ref = np.asarray(volume_slices(ref, target.axis)[target.index])
    ref = _as_mask(ref, p, "reference mask")
    if ref.shape != target.image.shape[:2]:
        raise ValueError(
            f"the reference mask {p.name} is {_hw(ref)} pixels but the target is {_hw(target.image)}: "
            "it must be the target's own mask"
        )
    if ref.dtype.kind == "f" and not np.array_equal(ref, np.round(ref)):
        raise ValueError(f"the reference mask {p.name} holds non-integer values: it must be a label map")
    if ref.min() < 0:
        raise ValueError(f"the reference mask {p.name} has negative values: labels must be >= 0")
    labels = ref.astype(np.int64)
    values = set(np.unique(labels).tolist())
    if values <= {0, 255} and 255 in values:
        labels = (labels == 255).astype(np.int64)
    return labels


# ---------------------------------------------------------------------- perturbation
def perturb_inputs(
    image: np.ndarray,
    support: SupportSet,
    name: str,
    severity: int = 3,
    where: str = "target",
    seed: int = 0,
) -> tuple[np.ndarray, SupportSet]:
    """Corrupt the target and/or the support set with a registered perturbation.

    The target is perturbed at its own size (grayscale, min-max scaled to [0, 1] first); the support
    set at the model size. Label perturbations act on each label's indicator in turn (a later label
    wins where two overlap).

    Args:
        image: The target ``(H, W)`` or ``(H, W, 3)``.
        support: The support set.
        name: ``"none"`` or a name from :func:`~universeg_plus.perturb.list_perturbations`.
        severity: 1 (mildest) .. 5.
        where: A key of :data:`~universeg_plus.perturb.WHERE` (``"target"``, ``"support_images"``,
            ``"support_masks"``, ``"support"``, ``"both"``).
        seed: Seed of the perturbation's random values.

    Returns:
        ``(image, support)``: the target as ``(H, W)`` float32 in [0, 1] when it was perturbed
        (else unchanged) and the (possibly new) support set.

    Raises:
        ValueError: unknown name, severity or ``where``, or a perturbation that acts on none of the
            selected inputs (label noise needs support masks).
    """
    if name == NO_PERTURBATION:
        return image, support
    if where not in WHERE:
        raise ValueError(f"'where' must be one of {', '.join(WHERE)}, got {where!r}")
    if isinstance(severity, float) and severity.is_integer():
        severity = int(severity)
    pert = get_perturbation(name, severity, seed=int(seed))
    slots = [s for s in WHERE[where] if SLOT_KIND[s] == pert.kind]
    if not slots:
        needs = "support masks ('support_masks', 'support' or 'both')" if pert.kind == "mask" else "images"
        raise ValueError(
            f"the perturbation {name!r} changes {pert.kind}s, but where={where!r} selects only "
            f"{', '.join(WHERE[where])}: choose where it applies to {needs}"
        )
    images, masks = support.images, support.masks
    if "target" in slots:
        t = preprocess_image(image, image.shape[:2], where="target")  # (1, H, W) in [0, 1]
        image = pert(t[None])[0, 0].numpy().astype(np.float32)
    if "support_images" in slots:
        images = pert(images)
    if "support_masks" in slots:
        out = torch.zeros_like(masks)
        for c in support.classes:
            out = torch.where(pert((masks == c).float()) > 0.5, torch.full_like(masks, float(c)), out)
        masks = out
    if images is not support.images or masks is not support.masks:
        support = SupportSet(images, masks, support.original_sizes, support.names)
    return image, support


# ---------------------------------------------------------------------- outputs
def probability_image(probabilities: np.ndarray) -> np.ndarray:
    """Foreground probability for display: ``(H, W)`` or ``(C, H, W)`` float in [0, 1] -> ``(H, W)`` uint8.

    Several classes show the largest class probability per pixel; 0 -> black, 1 -> white.
    """
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim == 3:
        p = p.max(axis=0)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (H, W) or (C, H, W), got shape {p.shape}")
    return np.round(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)


def dice_per_label(mask: np.ndarray, reference: np.ndarray, classes: Sequence[int]) -> dict[int, float]:
    """Dice of ``mask == c`` against ``reference == c`` for each of ``classes``."""
    return {int(c): float(dice(np.asarray(mask) == c, np.asarray(reference) == c)) for c in classes}


@dataclass(frozen=True)
class SegmentSettings:
    """The controls of one Segment click.

    Attributes:
        model: Registered model name.
        backend: ``"eager"`` or ``"tvm"``.
        support_size: Support examples per subset (``None`` or 0: the predictor's default).
        ensemble: Number of support subsets averaged.
        threshold: Foreground cut-off in (0, 1).
        perturbation: ``"none"`` or a perturbation name.
        severity: Perturbation severity 1..5.
        where: Which inputs the perturbation changes (a key of ``WHERE``).
        slice_index: Slice of a volume target (``None``: the middle one).
        axis: Slicing axis of a volume target.
        seed: Seed of the support-subset draw and of the perturbation.
    """

    model: str = FALLBACK_MODEL
    backend: str = "eager"
    support_size: int | None = None
    ensemble: int = 1
    threshold: float = 0.5
    perturbation: str = NO_PERTURBATION
    severity: int = 3
    where: str = "target"
    slice_index: int | None = None
    axis: int = 2
    seed: int = 0


@dataclass
class SegmentResult:
    """What one Segment click shows and offers.

    Attributes:
        overlay: ``(H, W, 3)`` uint8, the (possibly perturbed) target with the mask coloured in.
        probability: ``(H, W)`` uint8 foreground probability (see :func:`probability_image`).
        prediction: The predictor's output at the target's size.
        image: The target as the model saw it (after any perturbation).
        dice: Dice per support label against the reference, or ``None`` without a reference.
        files: The mask as PNG (label values as they are), and as NIfTI for NIfTI targets.
        summary: Markdown describing the run.
        warnings: Things the user should know (random weights, labels missing from the support...).
    """

    overlay: np.ndarray
    probability: np.ndarray
    prediction: Prediction
    image: np.ndarray
    dice: dict[int, float] | None
    files: list[Path]
    summary: str
    warnings: list[str] = field(default_factory=list)


def _int_or_none(value: Any, what: str, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    f = float(value)
    if not f.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    v = int(f)
    if v < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {v}")
    return v


def _safe_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "target"


def _write_outputs(target: Target, mask: np.ndarray, out_dir: Path) -> list[Path]:
    folder = out_dir / uuid.uuid4().hex[:12]
    stem = _safe_stem(target.name)
    files = [write_png(folder / f"{stem}_mask.png", mask)]
    if target.nifti is not None:
        if target.is_slice:
            labels = np.zeros(target.volume_shape, dtype=mask.dtype)
            np.moveaxis(labels, target.axis, 0)[target.index] = mask
        else:
            labels = mask.reshape(target.nifti.shape[: mask.ndim])
        files.append(write_label_nifti(folder / f"{stem}_mask.nii.gz", labels, target.nifti))
    return files


def _summary(
    settings: SegmentSettings,
    support: SupportSet,
    target: Target,
    pred: Prediction,
    scores: dict[int, float] | None,
    warnings: list[str],
    seconds: float,
) -> str:
    lines = [f"**Model** `{settings.model}` ({settings.backend})"]
    lines[0] += ", pretrained weights" if has_pretrained(settings.model) else ", **random weights**"
    lines.append(
        f"**Support** {len(support)} examples, labels {support.classes}; support size used "
        f"{settings.support_size or 'default'}, ensemble {settings.ensemble}, threshold {settings.threshold:g}"
    )
    if settings.perturbation != NO_PERTURBATION:
        lines.append(f"**Perturbation** {settings.perturbation}, severity {settings.severity}, on {settings.where}")
    lines.append(f"**Target** {target.describe()}")
    fg = {c: int(np.count_nonzero(pred.mask == c)) for c in pred.classes}
    lines.append("**Predicted pixels** " + ", ".join(f"label {c}: {n}" for c, n in fg.items()))
    if scores is not None:
        per = ", ".join(f"label {c}: {d:.3f}" for c, d in scores.items())
        lines.append(f"**Dice** {float(np.mean(list(scores.values()))):.3f} (mean; {per})")
    lines.append(f"**Time** {seconds:.2f} s")
    lines += [f"⚠️ {w}" for w in warnings]
    return "\n".join(f"- {line}" for line in lines)


def run_segmentation(
    support_images: Sequence[str | os.PathLike] | None,
    support_masks: Sequence[str | os.PathLike] | None,
    target_file: str | os.PathLike | None,
    reference_file: str | os.PathLike | None,
    settings: SegmentSettings,
    cache: ModelCache,
    out_dir: str | os.PathLike,
) -> SegmentResult:
    """Everything behind the Segment button.

    Args:
        support_images: Support image files.
        support_masks: Their mask files (paired in file-name order, see :func:`load_support`).
        target_file: The image or volume to segment.
        reference_file: Optional reference mask of the target, for Dice.
        settings: The controls.
        cache: Where networks are loaded once.
        out_dir: Folder for the downloadable files (a fresh subfolder per call).

    Returns:
        :class:`SegmentResult`.

    Raises:
        ValueError: bad uploads or settings (the message says what to change).
        ImportError: the TVM backend was chosen but cannot be used.
    """
    start = time.perf_counter()
    support_size = _int_or_none(settings.support_size, "the support size", 0) or None
    ensemble = _int_or_none(settings.ensemble, "the ensemble size", 1) or 1
    slice_index = _int_or_none(settings.slice_index, "the slice index", 0)
    threshold = float(settings.threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"the threshold must be strictly between 0 and 1, got {threshold:g}")
    predictor = cache.predictor(settings.model, settings.backend)
    target = load_target(target_file, slice_index, int(settings.axis))
    reference = load_reference(reference_file, target)
    support = load_support(support_images, support_masks, predictor.input_size)
    image, support = perturb_inputs(
        target.image, support, settings.perturbation, settings.severity, settings.where, settings.seed
    )
    predictor.set_support(support)
    pred = predictor.predict(
        image, threshold=threshold, ensemble=ensemble, support_size=support_size, seed=int(settings.seed)
    )
    warnings = [w for w in [weights_warning(settings.model)] if w]
    scores = None
    if reference is not None:
        scores = dice_per_label(pred.mask, reference, pred.classes)
        extra = sorted(set(np.unique(reference).tolist()) - {0, *pred.classes})
        if extra:
            warnings.append(f"the reference has label(s) {extra} that no support mask has; they are not scored")
    files = _write_outputs(target, pred.mask, Path(out_dir))
    result = SegmentResult(
        overlay=overlay_mask(image, pred.mask),
        probability=probability_image(pred.probabilities),
        prediction=pred,
        image=image,
        dice=scores,
        files=files,
        summary="",
        warnings=warnings,
    )
    used = dataclasses.replace(settings, support_size=support_size, ensemble=ensemble, threshold=threshold)
    result.summary = _summary(used, support, target, pred, scores, warnings, time.perf_counter() - start)
    return result


def perturbation_choices() -> list[str]:
    """``"none"`` followed by every registered perturbation name."""
    return [NO_PERTURBATION, *list_perturbations()]
