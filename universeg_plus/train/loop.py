"""The training loop: episodes -> augmentation -> model -> Dice+BCE -> AdamW, with checkpoints.

    from universeg_plus.train import load_run_config, train
    summary = train(load_run_config("configs/tiny.yaml", ["train.steps=50"]))

Runs unchanged on CPU and CUDA (bf16 autocast there) and under ``torchrun`` (DDP). A wall-clock
budget (``train.max_minutes``) or ``train.stop_at`` ends an invocation cleanly with a checkpoint;
``train.resume`` continues from it exactly (same parameters as an uninterrupted run; see
:mod:`universeg_plus.train.checkpoint`). Progress: a tqdm bar with the loss and Dice, or a log line
every ``train.log_every`` steps (``train.progress``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..inference import predict_probabilities
from ..io.json_files import read_json_object
from ..io.tables import append_csv
from ..factory import create_model
from ..data.augment import build_augmentations
from .checkpoint import (
    DataStreams,
    Resumed,
    checkpoint_state,
    resolve_resume,
    restore_checkpoint,
    save_checkpoint,
    save_model_folder,
    truncate_logs,
    warm_start,
)
from .config import RunConfig
from .distributed import DistInfo, all_reduce_max, cleanup, setup, wrap_model
from .episodes import Episodes, ValEpisodes, make_val_episodes
from ..nn.loss import DiceBCELoss, hard_dice
from .sources import build_sampler, load_run_tasks

__all__ = ["LOG_FIELDS", "VAL_FIELDS", "amp_dtype", "lr_lambda", "train", "validate", "warm_start"]

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "loss", "dice", "lr", "episodes_per_s", "support_size", "elapsed_s", "val_dice"]
VAL_FIELDS = ["step", "task", "dice"]


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on ``device``: bf16 for ``"bf16"``, and for ``"auto"`` on CUDA."""
    return torch.bfloat16 if amp == "bf16" or (amp == "auto" and device.type == "cuda") else None


def _autocast(device: torch.device, amp: str) -> Any:
    dtype = amp_dtype(device, amp)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    episodes: list[ValEpisodes],
    device: torch.device,
    amp: str = "auto",
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean hard Dice (probability > 0.5) per task on fixed episodes: ``{task name: dice}``."""
    out = {}
    for ep in episodes:
        probs = predict_probabilities(
            model,
            ep.targets,
            ep.support_images,
            ep.support_masks,
            batch_size=batch_size,
            device=device,
            autocast=amp_dtype(device, amp),
        )
        out[ep.name] = float(hard_dice(probs, ep.target_masks, threshold=0.5).mean())
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
        return _Trainer(cfg, info).run()
    finally:
        cleanup(info)


def _configure_torch(cfg: RunConfig, dev: torch.device) -> None:
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _gather_states(state: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    if not info.active:
        return [state]
    out: list[Any] = [None] * info.world_size
    torch.distributed.all_gather_object(out, state)
    return out


class _Window:
    """Loss, Dice and episodes since the last log row (device tensors: no sync per step)."""

    def __init__(self, device: torch.device) -> None:
        self.t = time.time()
        self.episodes = 0
        self.loss = torch.zeros((), device=device)
        self.dice = torch.zeros((), device=device)
        self.n = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, target_mask: torch.Tensor, episodes: int) -> None:
        self.loss += loss.detach()
        self.dice += hard_dice(logits.detach().float(), target_mask).mean()
        self.n += 1
        self.episodes += episodes

    def close(self, now: float) -> tuple[float, float, float]:
        """``(mean loss, mean Dice, episodes per second)`` of the window; starts the next one."""
        n = max(1, self.n)
        out = (float(self.loss / n), float(self.dice / n), self.episodes / max(1e-9, now - self.t))
        self.t, self.episodes, self.n = now, 0, 0
        self.loss.zero_(), self.dice.zero_()
        return out


class _Progress:
    """A tqdm bar with the loss and Dice, or (without a bar) a log line per log row; main process only."""

    def __init__(self, cfg: RunConfig, initial: int, main: bool) -> None:
        from tqdm.auto import tqdm

        want_bar = cfg.train.progress if cfg.train.progress is not None else sys.stderr.isatty()
        self.total, self.lines = cfg.train.steps, main and not want_bar
        self.bar = tqdm(total=cfg.train.steps, initial=initial, disable=not (main and want_bar), desc="train")

    def update(self) -> None:
        self.bar.update(1)

    def report(self, row: dict[str, Any]) -> None:
        self.bar.set_postfix({"loss": row["loss"], "dice": row["dice"], "episodes/s": row["episodes_per_s"]})
        if self.lines:
            log.info(
                "step %d/%d: loss %s, dice %s, lr %s, %s episodes/s, S=%s",
                row["step"], self.total, row["loss"], row["dice"], row["lr"], row["episodes_per_s"],
                row["support_size"],
            )

    def close(self) -> None:
        self.bar.close()


class _Trainer:
    """One invocation of a run: builds everything, restores a checkpoint, steps, logs, saves."""

    def __init__(self, cfg: RunConfig, info: DistInfo) -> None:
        self.cfg, self.info = cfg, info
        dev = self.dev = info.device
        self.out = Path(cfg.out_dir)
        _configure_torch(cfg, dev)

        # Same initial weights on every process; per-process data streams.
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model.name, mode="split", **cfg.model.overrides).to(dev)
        if cfg.train.channels_last and dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.streams = DataStreams(cfg.seed, info.rank, dev)

        train_tasks, val_tasks = load_run_tasks(cfg, info)
        self.train_tasks = train_tasks
        self.sampler = build_sampler(cfg, train_tasks, dev)
        self.augment = build_augmentations(cfg.augment)
        self.val_eps: list[ValEpisodes] = []
        if cfg.val.enabled and val_tasks is not None and info.is_main:
            self.val_eps = make_val_episodes(
                val_tasks, cfg.val.support_size, cfg.val.targets_per_task, cfg.val.seed, cfg.val.max_tasks
            )

        net = wrap_model(model, info)
        self.fwd = torch.compile(net, dynamic=True) if cfg.train.compile else net
        self.criterion = DiceBCELoss(cfg.optim.dice_weight, cfg.optim.bce_weight)
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_lambda(s, cfg.optim.warmup_steps, cfg.train.steps, cfg.optim.min_lr_ratio)
        )
        start = self._start()
        self.step, self.best, self.elapsed_before = start.step, start.best_val_dice, start.elapsed_s
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(_dump_yaml(cfg))
        self.training_info = self._training_info()
        self.t_start = time.time()

    # ------------------------------------------------------------------ start and save
    def _start(self) -> Resumed:
        """Restore ``train.resume`` (exact resume), else warm start from ``train.init`` if set."""
        cfg, info = self.cfg, self.info
        resume = resolve_resume(cfg.train.resume, self.out)
        if resume is None:
            if cfg.train.init is not None:
                warm_start(self.model, cfg.train.init)
            return Resumed(0, -1.0, 0.0)
        start = restore_checkpoint(resume, self.model, self.opt, self.sched, self.streams, info.world_size, self.dev)
        if info.is_main:
            truncate_logs(self.out, start.step)
            log.info("resumed from %s at step %d", resume, start.step)
        return start

    def _training_info(self) -> dict[str, Any]:
        """``training.json``: what the weights were trained on and held out from (lineage of ``train.init``)."""
        cfg, info, dev = self.cfg, self.info, self.dev
        out = {
            "run": cfg.model_dump(mode="json"),
            "model_name": cfg.model.name,
            "train_datasets": self.train_tasks.datasets if self.train_tasks is not None else [],
            "train_tasks": self.sampler.task_names,
            "validation_datasets": list(cfg.data.val_tasks),
            "held_out_datasets": list(cfg.data.held_out) + list(cfg.data.exclude),
            "synthetic_prob": self.sampler.synthetic_prob,
            "superpixel_prob": self.sampler.superpixel_prob,
            "world_size": info.world_size,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        }
        if cfg.train.init is not None:
            # A warm start has also seen what its initial weights were trained on: held-out checks must know.
            parent = _read_training_json(cfg.train.init)
            out["init"] = {"folder": str(cfg.train.init), "training": parent}
            earlier = parent.get("train_datasets", []) if isinstance(parent, dict) else []
            out["train_datasets"] = list(dict.fromkeys([*out["train_datasets"], *earlier]))
            leak = set(earlier) & set(out["held_out_datasets"])
            if leak:
                raise ValueError(f"train.init {cfg.train.init} was trained on held-out dataset(s) {sorted(leak)}")
            seen = sorted(set(earlier) & set(out["validation_datasets"]))
            if seen:
                log.warning(
                    "train.init %s was trained on validation dataset(s) %s: this run's validation Dice "
                    "(and its best/ choice) is optimistic on them", cfg.train.init, ", ".join(seen),
                )
        return out

    def _elapsed(self, now: float) -> float:
        return self.elapsed_before + (now - self.t_start)

    def save(self, reason: str) -> None:
        """Write ``last.pt`` and the ``model/`` folder (every process joins the stream gather)."""
        data_states = _gather_states(self.streams.data.get_state(), self.info)
        host_states = _gather_states(self.streams.host.get_state(), self.info)
        if not self.info.is_main:
            return
        state = checkpoint_state(
            self.model,
            self.opt,
            self.sched,
            step=self.step,
            best_val_dice=self.best,
            elapsed_s=self._elapsed(time.time()),
            run_config=self.cfg.model_dump(mode="json"),
            data_states=data_states,
            host_states=host_states,
            data_device=self.streams.data.device.type,
            device=self.dev,
        )
        save_checkpoint(self.out / "last.pt", state)
        save_model_folder(
            self.model, self.out / "model", {**self.training_info, "step": self.step, "elapsed_s": state["elapsed_s"]}
        )
        log.info("checkpoint (%s) at step %d -> %s", reason, self.step, self.out / "last.pt")

    # ------------------------------------------------------------------ steps
    def _train_step(self) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step; returns S, the loss, the logits and the target masks ``(B*T, 1, H, W)``."""
        cfg = self.cfg
        ep = self.sampler.sample(self.streams.data, self.streams.host)
        images, masks = self.augment(ep.images, ep.masks, self.streams.data)
        target, target_mask, sup_i, sup_m = Episodes(images, masks, ep.support_size, ep.task_ids).split()
        with _autocast(self.dev, cfg.train.amp):
            logits = self.fwd(target, sup_i, sup_m)
        loss = self.criterion(logits.float(), target_mask)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return ep.support_size, loss, logits, target_mask

    def _validate(self) -> float | None:
        """Periodic validation (main process): ``val.csv`` rows, ``best/``; the mean Dice or ``None``."""
        cfg, step = self.cfg, self.step
        if not self.val_eps or not (step % cfg.train.val_every == 0 or step == cfg.train.steps):
            return None
        self.model.eval()
        scores = validate(self.model, self.val_eps, self.dev, cfg.train.amp, cfg.val.batch_size)
        self.model.train()
        val_dice = sum(scores.values()) / len(scores)
        append_csv(
            [{"step": step, "task": name, "dice": f"{v:.5f}"} for name, v in scores.items()],
            VAL_FIELDS,
            self.out / "val.csv",
        )
        if val_dice > self.best:
            self.best = val_dice
            save_model_folder(self.model, self.out / "best", {**self.training_info, "step": step, "val_dice": val_dice})
        log.info("step %d: val dice %.4f (best %.4f)", step, val_dice, self.best)
        return val_dice

    def _log_row(self, window: _Window, support_size: int, val_dice: float | None) -> tuple[float, dict[str, Any]]:
        """Close the window into a ``log.csv`` row; returns its mean loss and the row."""
        now = time.time()
        loss, dice, eps = window.close(now)
        row = {
            "step": self.step,
            "loss": f"{loss:.5f}",
            "dice": f"{dice:.5f}",
            "lr": f"{self.sched.get_last_lr()[0]:.3e}",
            "episodes_per_s": f"{eps:.2f}",
            "support_size": support_size,
            "elapsed_s": f"{self._elapsed(now):.1f}",
            "val_dice": "" if val_dice is None else f"{val_dice:.5f}",
        }
        append_csv([row], LOG_FIELDS, self.out / "log.csv")
        return loss, row

    def _out_of_time(self, budget_s: float) -> bool:
        over = time.time() - self.t_start > budget_s
        if self.info.active:  # every process must stop at the same step
            over = bool(all_reduce_max(torch.tensor(float(over), device=self.dev), self.info) > 0)
        return over

    def run(self) -> dict[str, Any]:
        """Step until ``train.steps``, ``train.stop_at`` or the time budget; checkpoint; the summary."""
        cfg, info = self.cfg, self.info
        budget_s = cfg.train.max_minutes * 60 if cfg.train.max_minutes else math.inf
        stop_at = cfg.train.stop_at
        self.t_start = time.time()
        window = _Window(self.dev)
        last_loss = float("nan")
        stopped = "done"
        progress = _Progress(cfg, self.step, info.is_main)
        self.model.train()
        while self.step < cfg.train.steps:
            support_size, loss, logits, target_mask = self._train_step()
            progress.update()
            window.add(loss, logits, target_mask, target_mask.shape[0] * info.world_size)
            val_dice = self._validate()
            step = self.step
            stopping = stop_at is not None and step >= stop_at
            if info.is_main and (
                step % cfg.train.log_every == 0 or val_dice is not None or step == cfg.train.steps or stopping
            ):
                last_loss, row = self._log_row(window, support_size, val_dice)
                progress.report(row)
            if stopping and step < cfg.train.steps:
                stopped = "stop_at"
                break
            if self._out_of_time(budget_s):
                stopped = "time"
                break
            if step % cfg.train.ckpt_every == 0 and step < cfg.train.steps:
                self.save("periodic")
        progress.close()
        self.save(stopped)
        wall = time.time() - self.t_start
        if info.is_main:
            log.info("training %s at step %d after %.1f s", stopped, self.step, wall)
        return {
            "step": self.step,
            "stopped": stopped,
            "best_val_dice": self.best if self.best >= 0 else None,
            "last_loss": last_loss,
            "out_dir": str(self.out),
            "wall_s": wall,
            "rank": info.rank,
            "param_digest": _param_digest(self.model),
        }


def _read_training_json(folder: str | os.PathLike) -> dict[str, Any]:
    data = read_json_object(Path(folder) / "training.json") or {}
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
