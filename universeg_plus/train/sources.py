"""What a run trains and validates on: its tasks (task folders, a task file, NIfTI volumes) and the
episode sampler that mixes them with synthetic and superpixel tasks."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import torch

from ..data.synthetic import SyntheticTaskGenerator
from ..data.tasks import TaskCollection, load_nifti_task, load_task_root
from .config import RunConfig
from .distributed import DistInfo
from .episodes import EpisodeSampler

__all__ = ["build_sampler", "load_run_tasks"]

log = logging.getLogger(__name__)


def load_run_tasks(cfg: RunConfig, info: DistInfo) -> tuple[TaskCollection | None, TaskCollection | None]:
    """``(training tasks, validation tasks)`` of a run (either ``None`` when there is none).

    Validation datasets (``data.val_tasks``), held-out ones (``data.held_out``) and ``data.exclude``
    are never in the training tasks; held-out ones are not loaded at all.

    Raises:
        FileNotFoundError: ``data.root`` does not exist.
        ValueError: a task file at another size, unknown ``data.include`` names, NIfTI globs that
            do not pair, or no training task left.
        RuntimeError: a held-out dataset reached the training set.
    """
    train_tasks, val_tasks = _load_folder_tasks(cfg, info)
    if not cfg.data.nifti:
        return train_tasks, val_tasks
    d, size = cfg.data, cfg.image_size
    extra_train, extra_val = [], []
    for src in d.nifti:
        images, labels = sorted(glob.glob(src.images)), sorted(glob.glob(src.labels))
        if not images or len(images) != len(labels):
            raise ValueError(
                f"data.nifti {src.name}: {len(images)} image and {len(labels)} label volumes match "
                f"{src.images!r} and {src.labels!r}; need the same non-zero number"
            )
        for axis in src.axes:
            dataset = f"{src.name}_axis{axis}"
            if {src.name, dataset} & (set(d.exclude) | set(d.held_out)):
                continue
            tasks = load_nifti_task(
                images, labels, src.name, axis, size, src.label_names or None, min_pixels=d.min_pixels
            )
            (extra_val if src.name in d.val_tasks or dataset in d.val_tasks else extra_train).extend(tasks)
    held_out = tuple(d.val_tasks) + tuple(d.held_out) + tuple(d.exclude)
    train_all = TaskCollection([*(train_tasks or []), *extra_train])
    val_all = [*(val_tasks or []), *extra_val]
    return _check_leak(train_all, held_out), (TaskCollection(val_all) if val_all else None)


def _load_folder_tasks(cfg: RunConfig, info: DistInfo) -> tuple[TaskCollection | None, TaskCollection | None]:
    """Tasks from ``data.tasks_file`` or ``data.root``."""
    d = cfg.data
    size = cfg.image_size
    held_out = tuple(d.val_tasks) + tuple(d.held_out) + tuple(d.exclude)
    if d.tasks_file is not None:
        coll = TaskCollection.load(d.tasks_file)
        bad = sorted({t.name for t in coll if t.size != tuple(size)})
        if bad:
            raise ValueError(f"{d.tasks_file} holds tasks not at the training size {tuple(size)}: {bad[:3]}")
        if d.include is not None:
            missing = sorted(set(d.include) - set(coll.datasets))
            if missing:
                raise ValueError(f"unknown task(s) {missing} in {d.tasks_file}")
        train_tasks = coll.filter(d.include, exclude=held_out)
        val_names = [v for v in d.val_tasks if v in coll.datasets and v not in d.exclude]
        val_tasks = coll.filter(val_names) if val_names else None
        return _check_leak(train_tasks, held_out), val_tasks
    if d.root is None:
        return None, None
    root = Path(d.root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {root} does not exist")

    def load() -> tuple[TaskCollection, TaskCollection | None]:
        train_tasks = load_task_root(
            root, size, include=d.include, exclude=held_out, min_pixels=d.min_pixels, cache_dir=d.cache_dir
        )
        have = {p.name for p in root.iterdir() if p.is_dir()}
        val_names = [v for v in d.val_tasks if v in have and v not in d.exclude]
        missing = sorted(set(d.val_tasks) - have)
        if missing:
            log.warning("validation task(s) not under %s: %s", root, ", ".join(missing))
        val_tasks = (
            load_task_root(root, size, include=val_names, min_pixels=d.min_pixels, cache_dir=d.cache_dir)
            if val_names
            else None
        )
        return train_tasks, val_tasks

    if info.active and d.cache_dir is not None:
        # Rank 0 builds the cache, the others read it.
        if info.is_main:
            result = load()
        torch.distributed.barrier()
        if not info.is_main:
            result = load()
    else:
        result = load()
    train_tasks, val_tasks = result
    return _check_leak(train_tasks, held_out), val_tasks


def _check_leak(train_tasks: TaskCollection, held_out: tuple[str, ...]) -> TaskCollection:
    leak = set(train_tasks.datasets) & set(held_out)
    if leak:
        raise RuntimeError(f"held-out dataset(s) {sorted(leak)} reached the training set")
    if not len(train_tasks):
        raise ValueError("no real training tasks left after holding out data.val_tasks, data.held_out and data.exclude")
    return train_tasks



def build_sampler(cfg: RunConfig, train_tasks: TaskCollection | None, device: torch.device) -> EpisodeSampler:
    """The episode sampler of a run: real tasks, synthetic tasks (also when there is no real task)
    and superpixel pseudo-tasks, as ``data`` and ``episodes`` configure."""
    size = cfg.image_size
    synthetic = (
        SyntheticTaskGenerator(size, cfg.data.synthetic)
        if cfg.data.synthetic_prob > 0 or train_tasks is None
        else None
    )
    superpixel = None
    if cfg.data.superpixel_prob > 0:
        from ..data.superpixels import SuperpixelTaskSource, load_image_folder

        if cfg.data.unlabelled_dir is not None:
            pool = load_image_folder(cfg.data.unlabelled_dir, size)
        else:
            pool = torch.cat([t.images for t in train_tasks])
        superpixel = SuperpixelTaskSource(pool.to(device), cfg.data.superpixel_segments)
    return EpisodeSampler(
        train_tasks,
        size,
        synthetic=synthetic,
        synthetic_prob=cfg.data.synthetic_prob,
        superpixel=superpixel,
        superpixel_prob=cfg.data.superpixel_prob,
        batch_size=cfg.episodes.batch_size,
        s_range=(cfg.episodes.s_min, cfg.episodes.s_max),
        s_distribution=cfg.episodes.s_distribution,
        num_targets=cfg.episodes.num_targets,
        device=device,
    )
