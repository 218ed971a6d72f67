"""MetaSchedule tuning of the compiled network's kernels into a persistent database (level O3).

Tuning needs static shapes: tune for the support size you deploy (``support_size=16`` ...). A
symbolic-S module compiled at O3 picks up the tuned kernels whose shapes do not depend on S
(the target stream); its support-stream kernels keep the O2 treatment.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .cache import default_cache_dir
from .export import export_relax
from .levels import fuse_passes
from .targets import describe_target, require_tvm, resolve_target

__all__ = [
    "TuneReport",
    "database_digest",
    "default_tuning_dir",
    "extract_kernels",
    "open_database",
    "tune",
]

log = logging.getLogger(__name__)

_DB_FILES = ("database_workload.json", "database_tuning_record.json")


def default_tuning_dir() -> Path:
    """Where ``universeg-plus tune`` keeps its database by default: ``<cache>/tvm/tuning``."""
    return default_cache_dir() / "tuning"


def open_database(tuning_dir: str | Path, create: bool = False) -> Any | None:
    """The ``JSONDatabase`` in ``tuning_dir``, or ``None`` when there is none and ``create`` is False."""
    require_tvm()
    from tvm.s_tir import meta_schedule as ms

    d = Path(tuning_dir)
    files = [d / f for f in _DB_FILES]
    if not create and not all(f.exists() for f in files):
        return None
    d.mkdir(parents=True, exist_ok=True)
    return ms.database.JSONDatabase(path_workload=str(files[0]), path_tuning_record=str(files[1]))


def database_digest(tuning_dir: str | Path) -> str | None:
    """sha256 of the database files (part of the O3 cache key), ``None`` if there is no database."""
    h = hashlib.sha256()
    for name in _DB_FILES:
        p = Path(tuning_dir) / name
        if not p.exists():
            return None
        h.update(p.read_bytes())
    return h.hexdigest()


@dataclass
class Kernel:
    """A fused kernel of the compiled network: its MetaSchedule task and cost."""

    task: Any
    name: str
    flops: float  # per call, times the number of calls in the network
    static: bool


def _is_static(func: Any) -> bool:
    text = func.script()
    return "T.int64()" not in text and "T.int32()" not in text


def extract_kernels(mod: Any, target: Any) -> list[Kernel]:
    """The fused kernels of a Relax module (as O2/O3 fuse them), most expensive first."""
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.analysis import estimate_tir_flops

    with target:
        fused = tvm.transform.Sequential(fuse_passes(target))(mod)
    kernels = []
    for task in ms.relax_integration.extract_tasks(fused, target):
        static = _is_static(task.dispatched[0]["main"])
        flops = float(estimate_tir_flops(task.dispatched[0])) * task.weight if static else 0.0
        kernels.append(Kernel(task=task, name=task.task_name, flops=flops, static=static))
    return sorted(kernels, key=lambda k: -k.flops)


def _cost_model() -> str:
    """MetaSchedule's XGBoost cost model when xgboost is installed, else random (unguided) search."""
    try:
        import xgboost  # noqa: F401
    except ImportError:
        log.warning("xgboost is not installed: tuning without a cost model (random search); pip install xgboost-cpu")
        return "random"
    return "xgb"


@dataclass
class TuneReport:
    """What a tuning run did."""

    tuning_dir: Path
    target: str
    tuned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    tuned_flops_fraction: float = 0.0
    trials: int = 0
    seconds: float = 0.0


def tune(
    model: nn.Module,
    support_size: int,
    image_size: tuple[int, int] = (128, 128),
    batch_size: int = 1,
    target: str | dict | None = None,
    trials: int = 256,
    max_trials_per_task: int | None = None,
    max_kernels: int | None = None,
    tuning_dir: str | Path | None = None,
    seed: int = 0,
    trials_per_round: int = 16,
) -> TuneReport:
    """Tune the network's kernels with MetaSchedule; records go to (and add to) ``tuning_dir``.

    A later ``compile(..., level="O3")`` for the same target and shapes applies them.

    Args:
        model: The network (split form is exported).
        support_size: Static S to tune for (MetaSchedule needs static shapes).
        image_size: ``(H, W)``.
        batch_size: B.
        target: As for :func:`universeg_plus.compile`; default the host CPU.
        trials: Total measured trials over all kernels (the task scheduler spends them where
            the most time is to gain).
        max_trials_per_task: Cap per kernel (default: ``trials``).
        max_kernels: Tune only the most expensive kernels (by FLOPs); ``None``: every kernel.
        tuning_dir: Database folder (default :func:`default_tuning_dir`).
        seed: Search seed.
        trials_per_round: Candidates built and measured per search round (records reach the
            database after each round, so an interrupted run keeps what it measured).
    """
    require_tvm()
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(support_size, int) or support_size < 1:
        raise ValueError(f"tuning needs a static support_size >= 1, got {support_size!r}")
    if trials_per_round < 1:
        raise ValueError(f"trials_per_round must be >= 1, got {trials_per_round}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if max_kernels is not None and max_kernels < 1:
        raise ValueError(f"max_kernels must be >= 1 or None, got {max_kernels}")
    tgt = resolve_target(target)
    if "cpu" in tgt.keys and "num-cores" not in tgt.export():
        raise ValueError(f'MetaSchedule needs "num-cores" in a CPU target, got {describe_target(tgt)}')
    tuning_dir = Path(tuning_dir) if tuning_dir is not None else default_tuning_dir()
    start = time.perf_counter()
    mod = export_relax(model, batch_size, support_size, tuple(image_size))
    kernels = [k for k in extract_kernels(mod, tgt) if k.static]
    total = sum(k.flops for k in kernels) or 1.0
    chosen = kernels[:max_kernels] if max_kernels else kernels
    report = TuneReport(tuning_dir=tuning_dir, target=describe_target(tgt))
    report.tuned = [k.name for k in chosen]
    report.skipped = [k.name for k in kernels[len(chosen):]]
    report.tuned_flops_fraction = sum(k.flops for k in chosen) / total
    log.info(
        "tuning %d of %d kernels (%.0f%% of the FLOPs) with %d trials into %s",
        len(chosen), len(kernels), 100 * report.tuned_flops_fraction, trials, tuning_dir,
    )
    database = open_database(tuning_dir, create=True)
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        [k.task for k in chosen], work_dir=str(tuning_dir / "logs"), seed=seed
    )
    ms.tune_tasks(
        tasks=contexts,
        task_weights=weights,
        work_dir=str(tuning_dir / "logs"),
        max_trials_global=trials,
        max_trials_per_task=max_trials_per_task or trials,
        num_trials_per_iter=max(1, min(trials_per_round, max_trials_per_task or trials)),
        database=database,
        cost_model=_cost_model(),
        # Generous timeouts: a busy 2-core machine needs more than the default 30 s to start workers.
        builder=ms.builder.LocalBuilder(timeout_sec=180.0),
        runner=ms.runner.LocalRunner(timeout_sec=60.0),
    )
    report.trials = trials
    report.seconds = time.perf_counter() - start
    return report
