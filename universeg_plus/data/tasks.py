"""Real segmentation tasks: folders of PNG label maps and NIfTI volumes, preloaded as binary tasks.

A *binary task* is one (dataset, label or label group, slicing axis) with many (image, mask) pairs,
held in memory at the training resolution::

    coll = load_task_root("/data/tasks", size=(128, 128), exclude=DEFAULT_VAL_TASKS)
    coll.tasks[0].images  # (N, 1, H, W) float32 in [0, 1]
    coll.tasks[0].masks   # (N, 1, H, W) float32 in {0, 1}

Folder layout (one folder per dataset)::

    <root>/<dataset>/images/<stem>.png   grayscale (RGB is converted to luma)
    <root>/<dataset>/masks/<stem>.png    uint8 label map, 0 = background
    <root>/<dataset>/meta.json           optional: "labels" {id: name}, "binary_tasks" {name: [ids]}

Every label id present becomes a binary task, and so does every group in ``binary_tasks``.
Train/validation splits are by dataset name, never by image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import atomic_path
from ..io.inputs import as_label_map, image_array, resize_indicators, standardize_image
from .splits import HELD_OUT

__all__ = [
    "DEFAULT_VAL_TASKS",
    "BinaryTask",
    "TaskCollection",
    "load_nifti_task",
    "load_task_folder",
    "load_task_root",
    "split_by_task",
]

log = logging.getLogger(__name__)

#: The held-out datasets (evaluation, the model card, the bundled example; never trained or validated
#: on): the ``held_out`` split of ``splits.json`` (:mod:`universeg_plus.data.splits`).
DEFAULT_VAL_TASKS: tuple[str, ...] = HELD_OUT

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_CACHE_VERSION = 3


@dataclass
class BinaryTask:
    """One binary segmentation task with its (image, mask) pairs at one resolution.

    Attributes:
        name: Unique id, ``"<dataset>/<label name>"`` (e.g. ``"acdc_cardiac_mri/left_ventricle_cavity"``).
        dataset: The dataset (folder) the task comes from; splits are by this name.
        labels: Label ids of the source label map that form the foreground.
        images: ``(N, 1, H, W)`` float32 in [0, 1].
        masks: ``(N, 1, H, W)`` float32 in {0, 1}.
        stems: File stems (or ``"<volume>:<slice>"``) of the N pairs.
        axis: Slicing axis for volume sources, ``None`` for 2D images.
    """

    name: str
    dataset: str
    labels: tuple[int, ...]
    images: torch.Tensor
    masks: torch.Tensor
    stems: list[str] = field(default_factory=list)
    axis: int | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"task {self.name}: images must be (N, 1, H, W), got {tuple(self.images.shape)}")
        if self.masks.shape != self.images.shape:
            raise ValueError(
                f"task {self.name}: masks {tuple(self.masks.shape)} must match images {tuple(self.images.shape)}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def label(self) -> int | tuple[int, ...]:
        """The single label id, or the tuple of ids for a label group."""
        return self.labels[0] if len(self.labels) == 1 else self.labels

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the stored pairs."""
        return int(self.images.shape[-2]), int(self.images.shape[-1])

    def to(self, device: torch.device | str) -> BinaryTask:
        """A copy with tensors on ``device``."""
        return BinaryTask(
            self.name,
            self.dataset,
            self.labels,
            self.images.to(device),
            self.masks.to(device),
            list(self.stems),
            self.axis,
        )


class TaskCollection:
    """An ordered set of :class:`BinaryTask` s with dataset-level filtering, caching and device moves."""

    def __init__(self, tasks: Iterable[BinaryTask]) -> None:
        self.tasks: list[BinaryTask] = list(tasks)
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate task names: {dup}")

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, i: int) -> BinaryTask:
        return self.tasks[i]

    def __repr__(self) -> str:
        return (
            f"TaskCollection({len(self.tasks)} tasks from {len(self.datasets)} datasets, {self.num_pairs} pairs)"
        )

    @property
    def datasets(self) -> list[str]:
        """Dataset names, in first-seen order."""
        return list(dict.fromkeys(t.dataset for t in self.tasks))

    @property
    def names(self) -> list[str]:
        """Task names."""
        return [t.name for t in self.tasks]

    @property
    def num_pairs(self) -> int:
        """Total (image, mask) pairs over all tasks."""
        return sum(len(t) for t in self.tasks)

    def filter(self, include: Sequence[str] | None = None, exclude: Sequence[str] = ()) -> TaskCollection:
        """Keep tasks whose dataset (or full task name) is in ``include`` and not in ``exclude``."""
        inc = None if include is None else set(include)
        exc = set(exclude)
        keep = [
            t
            for t in self.tasks
            if (inc is None or t.dataset in inc or t.name in inc) and t.dataset not in exc and t.name not in exc
        ]
        return TaskCollection(keep)

    def to(self, device: torch.device | str) -> TaskCollection:
        """A collection with every task's tensors on ``device``."""
        return TaskCollection(t.to(device) for t in self.tasks)

    def save(self, path: str | os.PathLike, half: bool = False) -> None:
        """Write all tasks to one compact ``torch.save`` file (atomically).

        Images are stored once per (dataset, stem), as float32 (lossless: :meth:`load` restores
        identical tensors) or with ``half`` as float16 (within 2.5e-4; half the size, for carrying
        to another machine), and masks bit-packed: the 25 shared datasets at 128x128 take about
        100 MB (50 MB in float16). :meth:`load` needs neither PIL nor the source folders.
        """
        import numpy as np

        datasets: dict[str, dict] = {}
        tasks = []
        for t in self.tasks:
            ds = datasets.setdefault(t.dataset, {"keys": {}, "images": []})
            idx = []
            for stem, img in zip(t.stems or [f"#{i}" for i in range(len(t))], t.images):
                key = (stem, t.axis)
                if key not in ds["keys"]:
                    ds["keys"][key] = len(ds["images"])
                    ds["images"].append(img)
                idx.append(ds["keys"][key])
            bits = np.packbits(t.masks.cpu().numpy().astype(bool).reshape(len(t), -1), axis=1)
            tasks.append(
                {
                    "name": t.name,
                    "dataset": t.dataset,
                    "labels": list(t.labels),
                    "index": torch.tensor(idx, dtype=torch.long),
                    "mask_bits": torch.from_numpy(bits),
                    "shape": list(t.masks.shape),
                    "stems": list(t.stems),
                    "axis": t.axis,
                }
            )
        payload = {
            "version": _CACHE_VERSION,
            "images": {
                name: torch.stack(d["images"]).cpu().to(torch.float16 if half else torch.float32)
                for name, d in datasets.items()
            },
            "tasks": tasks,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TaskCollection:
        """Read a file written by :meth:`save`."""
        import numpy as np

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"task file {path} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or foreign file
            raise ValueError(f"cannot read task file {path}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("version") != _CACHE_VERSION:
            raise ValueError(f"{path} is not a task file of version {_CACHE_VERSION}")
        images = {k: v.float() for k, v in payload["images"].items()}
        out = []
        for d in payload["tasks"]:
            shape = tuple(d["shape"])
            n_pix = int(np.prod(shape[1:]))
            bits = np.unpackbits(d["mask_bits"].numpy(), axis=1, count=n_pix)
            masks = torch.from_numpy(bits.reshape(shape).astype(np.float32))
            out.append(
                BinaryTask(
                    d["name"],
                    d["dataset"],
                    tuple(d["labels"]),
                    images[d["dataset"]][d["index"]],
                    masks,
                    list(d["stems"]),
                    d["axis"],
                )
            )
        return cls(out)


def _check_size(size: tuple[int, int] | Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ValueError(f"size must be (H, W) with positive entries, got {tuple(size)}")
    return int(size[0]), int(size[1])


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "_" for c in text.strip())
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_") or "label"


def _resize_image(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(H, W)`` float -> ``(1, h, w)`` in [0, 1]: the predictor's image rule (:mod:`..io.inputs`)."""
    return standardize_image(img, size)[None]


def _resize_masks(
    label_map: torch.Tensor, groups: Sequence[tuple[int, ...]], size: tuple[int, int]
) -> torch.Tensor:
    """``(H, W)`` int label map -> ``(G, h, w)`` {0, 1} float, one per label group (the mask rule of
    :func:`..io.inputs.resize_indicators`)."""
    onehot = torch.stack([torch.isin(label_map, torch.tensor(g)) for g in groups])
    return resize_indicators(onehot, size)


def _read_pair(image_path: Path, mask_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """An image ``(H, W)`` float32 and its label map ``(H, W)`` int64, read by the predictor's rules."""
    img = image_array(image_path, "image", str(image_path))
    lab = as_label_map(mask_path, str(mask_path))
    if img.shape != lab.shape:
        raise ValueError(f"image {image_path} is {tuple(img.shape)} but its mask is {tuple(lab.shape)}")
    return torch.from_numpy(np.ascontiguousarray(img)), torch.from_numpy(lab)


def _label_groups(meta: dict, present: set[int]) -> dict[str, tuple[int, ...]]:
    """Label name -> ids, for every single label present and every meta ``binary_tasks`` group."""
    names = {int(k): str(v) for k, v in (meta.get("labels") or {}).items() if str(k).lstrip("-").isdigit()}
    singles = sorted(present - {0})
    slugs = [
        _slug(names[lab].split(" (")[0])[:48].strip("_") if lab in names else f"label_{lab}" for lab in singles
    ]
    if len(set(slugs)) != len(slugs):  # names that collide after slugging/truncation
        slugs = [f"{s}_{lab}" for s, lab in zip(slugs, singles)]
    groups: dict[str, tuple[int, ...]] = {s: (lab,) for s, lab in zip(slugs, singles)}
    for gname, ids in (meta.get("binary_tasks") or {}).items():
        ids_t = tuple(sorted(int(i) for i in ids))
        if len(ids_t) == 1 and ids_t in groups.values():
            continue
        if set(ids_t) & present:
            groups[_slug(str(gname))] = ids_t
    return groups


def load_task_folder(
    path: str | os.PathLike,
    size: tuple[int, int] | Sequence[int] = (128, 128),
    min_pixels: int = 1,
    min_pairs: int = 2,
) -> list[BinaryTask]:
    """Load one dataset folder as binary tasks at ``size``.

    Args:
        path: ``<dataset>/`` with ``images/`` and ``masks/`` (matched by file stem) and an optional
            ``meta.json``.
        size: ``(H, W)`` to resize to (images bilinear with antialias, masks area-weighted then >= 0.5).
        min_pixels: A pair joins a task only if its resized mask has at least this many foreground
            pixels (``0`` keeps empty masks too).
        min_pairs: Tasks with fewer pairs are dropped.

    Returns:
        One :class:`BinaryTask` per label (and label group), named ``"<dataset>/<label name>"``.

    Raises:
        FileNotFoundError: missing folder or ``images``/``masks`` sub-folder.
        ValueError: no matching pairs, an unreadable file, or image/mask size mismatch.
    """
    size = _check_size(size)
    root = Path(path)
    img_dir, mask_dir = root / "images", root / "masks"
    for d in (root, img_dir, mask_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"task folder {d} does not exist (expected <task>/images and <task>/masks)")
    meta: dict = {}
    if (root / "meta.json").is_file():
        try:
            meta = json.loads((root / "meta.json").read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"cannot parse {root / 'meta.json'}: {exc}") from exc
    masks_by_stem = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in _IMAGE_EXTS}
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in _IMAGE_EXTS and p.stem in masks_by_stem)
    if not images:
        raise ValueError(f"no image/mask pairs with matching stems in {img_dir} and {mask_dir}")

    stems, imgs, label_maps = [], [], []
    for p in images:
        img, lab = _read_pair(p, masks_by_stem[p.stem])
        stems.append(p.stem)
        imgs.append(_resize_image(img, size))
        label_maps.append(lab)
    present = set()
    for lab in label_maps:
        present.update(int(v) for v in torch.unique(lab))
    groups = _label_groups(meta, present)
    if not groups:
        log.warning("%s: no foreground labels in any mask", root)
        return []
    gnames, gids = list(groups), list(groups.values())
    all_masks = torch.stack([_resize_masks(lab, gids, size) for lab in label_maps])  # (N, G, h, w)
    image_t = torch.stack(imgs)  # (N, 1, h, w)
    dataset = root.name
    tasks = []
    for g, (gname, ids) in enumerate(zip(gnames, gids)):
        m = all_masks[:, g : g + 1]
        keep = (m.sum(dim=(1, 2, 3)) >= min_pixels).nonzero().flatten()
        if len(keep) < min_pairs:
            log.debug(
                "%s/%s: %d pairs with foreground < min_pairs=%d, dropped", dataset, gname, len(keep), min_pairs
            )
            continue
        tasks.append(
            BinaryTask(
                name=f"{dataset}/{gname}",
                dataset=dataset,
                labels=ids,
                images=image_t[keep].contiguous(),
                masks=m[keep].contiguous(),
                stems=[stems[i] for i in keep.tolist()],
            )
        )
    return tasks


def load_nifti_task(
    image_paths: Sequence[str | os.PathLike],
    label_paths: Sequence[str | os.PathLike],
    name: str,
    axis: int = 2,
    size: tuple[int, int] | Sequence[int] = (128, 128),
    labels: dict[int, str] | None = None,
    min_pixels: int = 1,
    min_pairs: int = 2,
) -> list[BinaryTask]:
    """Slice NIfTI volumes and their label volumes into binary tasks.

    Each volume is clipped to its 0.5-99.5 intensity percentiles; slices are taken along ``axis``
    and min-max normalised per slice.

    Args:
        image_paths: Image volumes (``.nii``/``.nii.gz``), one per subject.
        label_paths: Label volumes of the same shapes, in the same order.
        name: Dataset name (the task names are ``"<name>_axis<axis>/<label>"``).
        axis: Slicing axis (0, 1 or 2).
        size: ``(H, W)`` of the slices after resizing.
        labels: Optional ``{id: name}``; default ``label_<id>`` for every id present.
        min_pixels: Minimum resized foreground pixels for a slice to join a task.
        min_pairs: Tasks with fewer slices are dropped.

    Raises:
        ImportError: nibabel is missing.
        ValueError: mismatched lists or shapes, bad axis.
    """
    try:
        import nibabel as nib
    except ImportError as exc:  # pragma: no cover - nibabel is a core dependency
        raise ImportError('NIfTI support needs nibabel: pip install "universeg-plus"') from exc
    size = _check_size(size)
    if len(image_paths) != len(label_paths) or not image_paths:
        raise ValueError(
            f"need the same non-zero number of image and label volumes, got {len(image_paths)} and {len(label_paths)}"
        )
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    slices_img, slices_lab, stems = [], [], []
    for ip, lp in zip(image_paths, label_paths):
        for p in (ip, lp):
            if not Path(p).is_file():
                raise FileNotFoundError(f"volume {p} does not exist")
        try:
            vol = torch.from_numpy(nib.load(str(ip)).get_fdata(dtype="float32"))
            lab = torch.from_numpy(nib.load(str(lp)).get_fdata(dtype="float32")).round().long()
        except Exception as exc:
            raise ValueError(f"cannot read NIfTI pair {ip}, {lp}: {exc}") from exc
        if vol.ndim == 4 and vol.shape[-1] == 1:
            vol = vol[..., 0]
        if lab.ndim == 4 and lab.shape[-1] == 1:
            lab = lab[..., 0]
        if vol.ndim != 3 or vol.shape != lab.shape:
            raise ValueError(
                f"{ip} {tuple(vol.shape)} and {lp} {tuple(lab.shape)} must be 3D volumes of one shape"
            )
        lo, hi = torch.quantile(vol.flatten()[:: max(1, vol.numel() // 1_000_000)], torch.tensor([0.005, 0.995]))
        vol = vol.clamp(lo, hi)
        for k in range(vol.shape[axis]):
            lab_k = lab.select(axis, k)
            if not bool((lab_k > 0).any()):
                continue
            slices_img.append(_resize_image(vol.select(axis, k), size))
            slices_lab.append(lab_k)
            stems.append(f"{Path(ip).name}:{k}")
    if not slices_img:
        return []
    present = set()
    for lab in slices_lab:
        present.update(int(v) for v in torch.unique(lab))
    groups = _label_groups({"labels": labels or {}}, present)
    gids = list(groups.values())
    all_masks = torch.stack([_resize_masks(lab, gids, size) for lab in slices_lab])
    image_t = torch.stack(slices_img)
    dataset = f"{name}_axis{axis}"
    tasks = []
    for g, gname in enumerate(groups):
        m = all_masks[:, g : g + 1]
        keep = (m.sum(dim=(1, 2, 3)) >= min_pixels).nonzero().flatten()
        if len(keep) < min_pairs:
            continue
        tasks.append(
            BinaryTask(
                f"{dataset}/{gname}",
                dataset,
                gids[g],
                image_t[keep].contiguous(),
                m[keep].contiguous(),
                [stems[i] for i in keep.tolist()],
                axis,
            )
        )
    return tasks


def _root_fingerprint(folders: list[Path], size: tuple[int, int], min_pixels: int, min_pairs: int) -> str:
    h = hashlib.sha256(f"{_CACHE_VERSION}|{size}|{min_pixels}|{min_pairs}".encode())
    for d in folders:
        for sub in ("images", "masks"):
            for p in sorted((d / sub).iterdir()):
                st = p.stat()
                h.update(f"{d.name}/{sub}/{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
        meta = d / "meta.json"
        if meta.is_file():
            h.update(meta.read_bytes())
    return h.hexdigest()[:16]


def load_task_root(
    root: str | os.PathLike,
    size: tuple[int, int] | Sequence[int] = (128, 128),
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    min_pixels: int = 1,
    min_pairs: int = 2,
    cache_dir: str | os.PathLike | None = None,
) -> TaskCollection:
    """Load every dataset folder under ``root`` (those with ``images/`` and ``masks/``).

    Args:
        root: Folder of dataset folders.
        size: ``(H, W)`` training resolution.
        include: Dataset names to load (all when ``None``); unknown names raise ``ValueError``.
        exclude: Dataset names never loaded (e.g. held-out validation tasks).
        min_pixels: See :func:`load_task_folder`.
        min_pairs: See :func:`load_task_folder`.
        cache_dir: If given, the preprocessed tensors are cached there, keyed by the folder
            contents, size and filters, and reused on the next call.

    Returns:
        A :class:`TaskCollection`, datasets in sorted name order.
    """
    size = _check_size(size)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"task root {root} does not exist")
    available = sorted(d.name for d in root.iterdir() if (d / "images").is_dir() and (d / "masks").is_dir())
    if not available:
        raise ValueError(f"no task folders (<task>/images + <task>/masks) under {root}")
    if include is not None:
        missing = sorted(set(include) - set(available))
        if missing:
            raise ValueError(f"unknown task(s) {missing} under {root}; available: {', '.join(available)}")
    chosen = [n for n in available if (include is None or n in include) and n not in set(exclude)]
    folders = [root / n for n in chosen]
    cache_path = None
    if cache_dir is not None:
        key = _root_fingerprint(folders, size, min_pixels, min_pairs)
        cache_path = Path(cache_dir) / f"tasks-{size[0]}x{size[1]}-{key}.pt"
        if cache_path.is_file():
            log.info("loading cached tasks from %s", cache_path)
            return TaskCollection.load(cache_path)
    tasks: list[BinaryTask] = []
    for d in folders:
        tasks.extend(load_task_folder(d, size, min_pixels=min_pixels, min_pairs=min_pairs))
    coll = TaskCollection(tasks)
    log.info("loaded %r from %s", coll, root)
    if cache_path is not None:
        coll.save(cache_path)
    return coll


def split_by_task(
    collection: TaskCollection, val_tasks: Sequence[str] = DEFAULT_VAL_TASKS
) -> tuple[TaskCollection, TaskCollection]:
    """Split into (train, val) by dataset name: every task of a ``val_tasks`` dataset goes to val."""
    val = set(val_tasks)
    return (
        TaskCollection(t for t in collection if t.dataset not in val and t.name not in val),
        TaskCollection(t for t in collection if t.dataset in val or t.name in val),
    )
