"""The training loop: episodes -> augmentation -> model -> Dice+BCE -> AdamW, with checkpoints.

    from universeg_plus.train import load_run_config, train
    summary = train(load_run_config("configs/tiny.yaml", ["train.steps=50"]))

Runs unchanged on CPU and CUDA (bf16 autocast there) and under ``torchrun`` (DDP). A wall-clock
budget (``train.max_minutes``) or ``train.stop_at`` ends an invocation cleanly with a checkpoint;
``train.resume`` continues from it exactly (same parameters as an uninterrupted run).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from ..data.synthetic import SyntheticTaskGenerator
from ..data.tasks import TaskCollection, load_nifti_task, load_task_root
from ..registry import create_model
from .augment import build_augmentations
from .checkpoint import load_checkpoint, save_checkpoint, save_model_folder
from .config import RunConfig
from .distributed import DistInfo, all_reduce_max, cleanup, setup, wrap_model
from .episodes import Episodes, EpisodeSampler, ValEpisodes, make_val_episodes
from .loss import DiceBCELoss, hard_dice

__all__ = ["lr_lambda", "train", "validate"]

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "loss", "dice", "lr", "episodes_per_s", "support_size", "elapsed_s", "val_dice"]


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _autocast(device: torch.device, amp: str):
    use = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    episodes: list[ValEpisodes],
    device: torch.device,
    amp: str = "auto",
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean hard Dice per task on fixed episodes: ``{task name: dice}``."""
    out = {}
    for ep in episodes:
        dices = []
        sup_i = ep.support_images.to(device)[None]
        sup_m = ep.support_masks.to(device)[None]
        for i in range(0, len(ep.targets), batch_size):
            tgt = ep.targets[i : i + batch_size].to(device)
            b = tgt.shape[0]
            with _autocast(device, amp):
                logits = model(tgt, sup_i.expand(b, -1, -1, -1, -1), sup_m.expand(b, -1, -1, -1, -1))
            dices.append(hard_dice(logits.float(), ep.target_masks[i : i + batch_size].to(device)))
        out[ep.name] = float(torch.cat(dices).mean())
    return out


def _load_tasks(cfg: RunConfig, info: DistInfo) -> tuple[TaskCollection | None, TaskCollection | None]:
    """(training tasks, validation tasks); validation datasets are never in training."""
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
            if src.name in d.exclude or dataset in d.exclude:
                continue
            tasks = load_nifti_task(
                images, labels, src.name, axis, size, src.label_names or None, min_pixels=d.min_pixels
            )
            (extra_val if src.name in d.val_tasks or dataset in d.val_tasks else extra_train).extend(tasks)
    held_out = tuple(d.val_tasks) + tuple(d.exclude)
    train_all = TaskCollection([*(train_tasks or []), *extra_train])
    val_all = [*(val_tasks or []), *extra_val]
    return _check_leak(train_all, held_out), (TaskCollection(val_all) if val_all else None)


def _load_folder_tasks(cfg: RunConfig, info: DistInfo) -> tuple[TaskCollection | None, TaskCollection | None]:
    """Tasks from ``data.tasks_file`` or ``data.root``."""
    d = cfg.data
    size = cfg.image_size
    held_out = tuple(d.val_tasks) + tuple(d.exclude)
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
        raise ValueError("no real training tasks left after holding out data.val_tasks and data.exclude")
    return train_tasks


def _append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)


def _truncate_csv(path: Path, max_step: int) -> None:
    """Drop rows written after the checkpoint being resumed (a crashed run may have logged more)."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
        fields = rows[0].keys() if rows else None
    if fields is None:
        return
    keep = [r for r in rows if int(r["step"]) <= max_step]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows(keep)
    os.replace(tmp, path)


def _gather_states(state: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    if not info.active:
        return [state]
    out: list[Any] = [None] * info.world_size
    torch.distributed.all_gather_object(out, state)
    return out


def train(cfg: RunConfig) -> dict[str, Any]:
    """Run (or resume) training as configured.

    Returns:
        Summary: ``step``, ``best_val_dice``, ``last_loss``, ``out_dir``, ``stopped`` (why it ended:
        ``"done"``, ``"time"`` or ``"stop_at"``), ``wall_s``, ``rank`` and ``param_digest`` (SHA-256
        of the parameters; equal on all processes of a DDP run).
    """
    info = setup(cfg.train.device)
    try:
        return _train(cfg, info)
    finally:
        cleanup(info)


def _train(cfg: RunConfig, info: DistInfo) -> dict[str, Any]:
    from tqdm.auto import tqdm

    dev = info.device
    out = Path(cfg.out_dir)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Same initial weights on every process; per-process data streams.
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model.name, mode="split", **cfg.model.overrides).to(dev)
    if cfg.train.channels_last and dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    # Per-process data streams: one on the device, one on the host for per-step scalars (no syncs).
    data_gen = torch.Generator(device=dev)
    host_gen = torch.Generator()

    def seed_streams(offset: int = 0) -> None:
        data_gen.manual_seed(cfg.seed * 1_000_003 + 17 * info.rank + 1 + offset)
        host_gen.manual_seed(cfg.seed * 1_000_003 + 17 * info.rank + 2 + offset)

    seed_streams()

    size = cfg.image_size
    train_tasks, val_tasks = _load_tasks(cfg, info)
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
        superpixel = SuperpixelTaskSource(pool.to(dev), cfg.data.superpixel_segments)
    sampler = EpisodeSampler(
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
        device=dev,
    )
    augment = build_augmentations(cfg.augment)
    val_eps = []
    if cfg.val.enabled and val_tasks is not None and info.is_main:
        val_eps = make_val_episodes(
            val_tasks, cfg.val.support_size, cfg.val.targets_per_task, cfg.val.seed, cfg.val.max_tasks
        )

    net = wrap_model(model, info)
    fwd = torch.compile(net, dynamic=True) if cfg.train.compile else net
    criterion = DiceBCELoss(cfg.optim.dice_weight, cfg.optim.bce_weight)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, cfg.optim.warmup_steps, cfg.train.steps, cfg.optim.min_lr_ratio)
    )

    step, best, elapsed_before = 0, -1.0, 0.0
    resume = cfg.train.resume
    if resume == "auto":
        resume = str(out / "last.pt") if (out / "last.pt").is_file() else None
    if resume is None and cfg.train.init is not None:
        warm_start(model, cfg.train.init)
    if resume is not None:
        ck = load_checkpoint(resume)
        saved_model = ck.get("model_config")
        if saved_model is not None and saved_model != model.config.model_dump(mode="json"):
            raise ValueError(f"checkpoint {resume} is for a different architecture: {saved_model}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, best, elapsed_before = (
            int(ck["step"]),
            float(ck.get("best_val_dice", -1.0)),
            float(ck.get("elapsed_s", 0.0)),
        )
        rng = ck["rng"]
        torch.set_rng_state(rng["torch"])
        if dev.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], dev)
        data_states, host_states = rng["data"], rng["host"]
        if len(data_states) == info.world_size and data_gen.device.type == rng.get("data_device", "cpu"):
            data_gen.set_state(data_states[info.rank].to("cpu"))
            host_gen.set_state(host_states[info.rank].to("cpu"))
        else:
            log.warning(
                "checkpoint has %d data streams on %s, this run has %d on %s: data streams re-seeded",
                len(data_states),
                rng.get("data_device"),
                info.world_size,
                data_gen.device.type,
            )
            seed_streams(step)
        if info.is_main:
            _truncate_csv(out / "log.csv", step)
            _truncate_csv(out / "val.csv", step)
            log.info("resumed from %s at step %d", resume, step)

    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(_dump_yaml(cfg))
    training_info = {
        "run": cfg.model_dump(mode="json"),
        "model_name": cfg.model.name,
        "train_datasets": train_tasks.datasets if train_tasks is not None else [],
        "train_tasks": sampler.task_names,
        "held_out_datasets": list(cfg.data.val_tasks) + list(cfg.data.exclude),
        "synthetic_prob": sampler.synthetic_prob,
        "superpixel_prob": sampler.superpixel_prob,
        "world_size": info.world_size,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
    }
    if cfg.train.init is not None:
        # A warm start has also seen what its initial weights were trained on: held-out checks must know.
        parent = _read_training_json(cfg.train.init)
        training_info["init"] = {"folder": str(cfg.train.init), "training": parent}
        earlier = parent.get("train_datasets", []) if isinstance(parent, dict) else []
        training_info["train_datasets"] = list(dict.fromkeys([*training_info["train_datasets"], *earlier]))
        leak = set(earlier) & set(training_info["held_out_datasets"])
        if leak:
            raise ValueError(f"train.init {cfg.train.init} was trained on held-out dataset(s) {sorted(leak)}")

    def checkpoint(reason: str) -> None:
        data_states = _gather_states(data_gen.get_state(), info)
        host_states = _gather_states(host_gen.get_state(), info)
        if not info.is_main:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "best_val_dice": best,
            "elapsed_s": elapsed_before + (time.time() - t_start),
            "model_config": model.config.model_dump(mode="json"),
            "run_config": cfg.model_dump(mode="json"),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                "data": [s.cpu() for s in data_states],
                "data_device": data_gen.device.type,
                "host": [s.cpu() for s in host_states],
            },
        }
        save_checkpoint(out / "last.pt", state)
        save_model_folder(model, out / "model", {**training_info, "step": step, "elapsed_s": state["elapsed_s"]})
        log.info("checkpoint (%s) at step %d -> %s", reason, step, out / "last.pt")

    budget_s = cfg.train.max_minutes * 60 if cfg.train.max_minutes else math.inf
    stop_at = cfg.train.stop_at
    t_start = time.time()
    win_t, win_eps, win_loss, win_dice, win_n = (
        time.time(),
        0,
        torch.zeros((), device=dev),
        torch.zeros((), device=dev),
        0,
    )
    last_loss = float("nan")
    stopped = "done"
    pbar = tqdm(
        total=cfg.train.steps, initial=step, disable=not (info.is_main and cfg.train.progress), desc="train"
    )
    model.train()
    while step < cfg.train.steps:
        ep = sampler.sample(data_gen, host_gen)
        images, masks = augment(ep.images, ep.masks, data_gen)
        target, target_mask, sup_i, sup_m = Episodes(images, masks, ep.support_size, ep.task_ids).split()
        with _autocast(dev, cfg.train.amp):
            logits = fwd(target, sup_i, sup_m)
        loss = criterion(logits.float(), target_mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
        step += 1
        pbar.update(1)
        win_loss += loss.detach()
        win_dice += hard_dice(logits.detach().float(), target_mask).mean()
        win_n += 1
        win_eps += target.shape[0] * info.world_size

        val_dice = None
        if val_eps and (step % cfg.train.val_every == 0 or step == cfg.train.steps):
            model.eval()
            scores = validate(model, val_eps, dev, cfg.train.amp, cfg.val.batch_size)
            model.train()
            val_dice = sum(scores.values()) / len(scores)
            for name, v in scores.items():
                _append_csv(
                    out / "val.csv", ["step", "task", "dice"], {"step": step, "task": name, "dice": f"{v:.5f}"}
                )
            if val_dice > best:
                best = val_dice
                save_model_folder(model, out / "best", {**training_info, "step": step, "val_dice": val_dice})
            log.info("step %d: val dice %.4f (best %.4f)", step, val_dice, best)

        stopping = stop_at is not None and step >= stop_at
        if info.is_main and (
            step % cfg.train.log_every == 0 or val_dice is not None or step == cfg.train.steps or stopping
        ):
            now = time.time()
            last_loss = float(win_loss / max(1, win_n))
            row = {
                "step": step,
                "loss": f"{last_loss:.5f}",
                "dice": f"{float(win_dice / max(1, win_n)):.5f}",
                "lr": f"{sched.get_last_lr()[0]:.3e}",
                "episodes_per_s": f"{win_eps / max(1e-9, now - win_t):.2f}",
                "support_size": ep.support_size,
                "elapsed_s": f"{elapsed_before + now - t_start:.1f}",
                "val_dice": "" if val_dice is None else f"{val_dice:.5f}",
            }
            _append_csv(out / "log.csv", LOG_FIELDS, row)
            pbar.set_postfix(loss=row["loss"], dice=row["dice"], eps=row["episodes_per_s"])
            win_t, win_eps, win_n = now, 0, 0
            win_loss.zero_(), win_dice.zero_()

        if stopping and step < cfg.train.steps:
            stopped = "stop_at"
            break
        over = time.time() - t_start > budget_s
        if info.active:  # every process must stop at the same step
            over = bool(all_reduce_max(torch.tensor(float(over), device=dev), info) > 0)
        if over:
            stopped = "time"
            break
        if step % cfg.train.ckpt_every == 0 and step < cfg.train.steps:
            checkpoint("periodic")
    pbar.close()
    checkpoint(stopped)
    wall = time.time() - t_start
    summary = {
        "step": step,
        "stopped": stopped,
        "best_val_dice": best if best >= 0 else None,
        "last_loss": last_loss,
        "out_dir": str(out),
        "wall_s": wall,
        "rank": info.rank,
        "param_digest": _param_digest(model),
    }
    if info.is_main:
        log.info("training %s at step %d after %.1f s", stopped, step, wall)
    return summary


def warm_start(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Load a weights folder's parameters into ``model`` (same architecture) for a new run.

    Raises:
        FileNotFoundError: no such folder or files.
        ValueError: the folder's architecture differs from ``model``'s (both named).
    """
    from ..hub.folder import load_folder

    src = load_folder(folder)
    if src.config != model.config:
        raise ValueError(
            f"train.init {folder} holds a {src.config.model_dump(mode='json')} network, but this run trains "
            f"{model.config.model_dump(mode='json')}"
        )
    model.load_state_dict(src.state_dict())
    log.info("warm start from %s", folder)


def _read_training_json(folder: str | os.PathLike) -> dict[str, Any]:
    import json

    path = Path(folder) / "training.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    # keep the lineage short: the parent's own parent is already recorded in its file
    return {k: v for k, v in data.items() if k in ("model_name", "train_datasets", "step", "run", "init")}


def _param_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters (identical on every DDP process when they are in sync)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in model.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _dump_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
