"""MetaSchedule tuning of the compiled network's kernels into a persistent database (level O3).

For every kernel it tunes, :func:`tune` also measures the schedule O2 gives that kernel (the
first matching rule of :func:`.levels.schedule_rules`), with the same builder and runner as the
tuned candidates, and commits it to the database as an ordinary MetaSchedule tuning record (the
rule's trace and its measured run time). ``MetaScheduleApplyDatabase`` applies a workload's
fastest record, so level O3 gets, per kernel, the faster of the best tuned schedule and O2's.

Tuning needs static shapes: tune for the support size you deploy (``support_size=16`` ...). A
symbolic-S module compiled at O3 picks up the tuned kernels whose shapes do not depend on S
(the target stream); its support-stream kernels keep the O2 treatment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .cache import default_cache_dir, make_private_dirs
from .export import export_relax
from .levels import default_schedule, fuse_passes
from .targets import describe_target, require_tvm, resolve_target

__all__ = [
    "KernelChoice",
    "TuneReport",
    "database_digest",
    "default_tuning_dir",
    "extract_kernels",
    "kernel_choice",
    "measure_default_schedules",
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
    make_private_dirs(d)  # like the compiled-library cache it usually sits in
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
class KernelChoice:
    """Which schedule level O3 applies to one kernel of the database, and the measured times.

    Times are mean run seconds per call as MetaSchedule's runner measured them (``None``: no valid
    record of that kind). O3 applies the workload's fastest record, so ``applied`` is ``"rule"``
    when O2's schedule was measured at least as fast as every tuned one.
    """

    name: str
    tuned_seconds: float | None  # the best MetaSchedule-tuned record
    rule_seconds: float | None  # O2's schedule (the record whose trace is the rule's)

    @property
    def applied(self) -> str:
        """``"rule"``, ``"tuned"`` or ``"none"`` (no valid record: O3 falls back to O2's rules)."""
        rule, tuned = self.rule_seconds, self.tuned_seconds
        if rule is not None and (tuned is None or rule <= tuned):
            return "rule"
        return "tuned" if tuned is not None else "none"

    def summary(self) -> str:
        """One line: the kernel, both times and what O3 applies."""
        times = f"best tuned {_ms(self.tuned_seconds)}, O2 {_ms(self.rule_seconds)}"
        return f"{self.name}: {times} -> O3 applies {self.applied}"


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
    kernels: list[KernelChoice] = field(default_factory=list)  # per tuned kernel, after tuning


def _json_value(obj: Any) -> Any:
    value = getattr(obj, "value", None)  # IntImm / FloatImm attributes of the instructions
    return value if isinstance(value, (int, float)) else str(obj)


def _trace_key(trace: Any) -> str:
    """A trace's instructions before any MetaSchedule postprocessing, as a canonical string.

    Equal for a trace and its database round trip, and for O2's schedule picked up again by the
    search (which appends its postprocessors' instructions).
    """
    return json.dumps(trace.as_json(remove_postproc=True), default=_json_value, sort_keys=True)


def _mean(record: Any) -> float:
    secs = [float(x) for x in record.run_secs]
    return sum(secs) / len(secs)


def _record_times(database: Any, mod: Any, rule: Any | None) -> tuple[list[float], list[float]]:
    """Mean run times of a workload's valid records: (tuned ones, those with the rule's trace)."""
    tuned: list[float] = []
    ruled: list[float] = []
    if not database.has_workload(mod):
        return tuned, ruled
    rule_key = _trace_key(rule.trace) if rule is not None else None
    workload = database.commit_workload(mod)  # the stored workload (no write when present)
    for record in database.get_top_k(workload, max(len(database), 1)):
        (ruled if rule_key is not None and _trace_key(record.trace) == rule_key else tuned).append(_mean(record))
    return tuned, ruled


def kernel_choice(database: Any, kernel: Kernel, target: Any) -> KernelChoice:
    """What O3 applies to ``kernel`` from ``database``: its records split into O2's and tuned ones."""
    mod = kernel.task.dispatched[0]
    tuned, ruled = _record_times(database, mod, default_schedule(mod["main"], target))
    return KernelChoice(kernel.name, min(tuned, default=None), min(ruled, default=None))


def build_kernel(mod: Any, target: Any, _params: Any = None) -> Any:
    """MetaSchedule's ``default_build`` without its ``import tvm.s_tir.tensor_intrin``.

    The builder starts fresh worker processes for every batch of candidates, and that import
    (registering every tensor intrinsic; building a scheduled kernel does not look them up) made
    one build call of one small kernel take 35 s instead of 4 s on the busy 2-core machine.
    Picklable by reference, so the workers import it from this module.
    """
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def _import_tensor_intrinsics() -> None:
    """Import ``tvm.s_tir.tensor_intrin`` (``TuneContext`` needs it) without its slow path.

    Each of its ~500 TVMScript functions calls ``inspect.stack()``, and for each frame of frozen
    code (the import machinery, ``runpy``: file ``<frozen importlib._bootstrap>``, not on disk)
    ``inspect.getmodule`` scans all of ``sys.modules`` (about 2000 entries with torch loaded)
    several times: 43 s on the busy 2-core machine. Recording in ``inspect``'s file-to-module
    cache the modules those frames belong to (frozen modules, which have no source either way)
    brings it to 6-7 s. Once per process.
    """
    import inspect

    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    for name, module in list(sys.modules.items()):
        if getattr(getattr(module, "__spec__", None), "origin", None) == "frozen":
            inspect.modulesbyfile.setdefault(f"<frozen {name}>", name)
    import tvm.s_tir.tensor_intrin  # noqa: F401


def _device_type(target: Any) -> str:
    return "cuda" if "gpu" in target.keys else "cpu"


def measure_default_schedules(kernels: list[Kernel], database: Any, target: Any, builder: Any, runner: Any) -> int:
    """Measure O2's schedule of each kernel and commit it to ``database`` as a tuning record.

    The record is a plain MetaSchedule ``TuningRecord``: the rule's trace (replayable on the
    workload), the run times measured by ``runner`` (the runner that measures the tuned
    candidates), the target and the argument info. Kernels without a matching rule, and those
    whose database already holds a valid record with the rule's trace, are skipped; a failed
    build or run is logged and skipped.

    Returns:
        The number of records committed.
    """
    from tvm.s_tir import meta_schedule as ms

    todo = []
    for kernel in kernels:
        mod = kernel.task.dispatched[0]
        rule = default_schedule(mod["main"], target)
        if rule is None:
            log.info("%s: no O2 rule matches, nothing to compare with", kernel.name)
            continue
        if _record_times(database, mod, rule)[1]:
            log.info("%s: O2's schedule is already in the database", kernel.name)
            continue
        todo.append((kernel, mod, rule))
    if not todo:
        return 0
    log.info("measuring O2's schedule of %d kernel(s)", len(todo))
    built = builder.build([ms.builder.BuilderInput(rule.mod, target) for _, _, rule in todo])
    runs = []
    for (kernel, mod, rule), result in zip(todo, built):
        if result.error_msg:
            log.warning("%s: O2's schedule failed to build: %s", kernel.name, result.error_msg.strip().splitlines()[-1])
        else:
            runs.append((kernel, mod, rule, ms.arg_info.ArgInfo.from_prim_func(mod["main"]), result.artifact_path))
    committed = 0
    try:
        inputs = [ms.runner.RunnerInput(path, _device_type(target), args) for *_, args, path in runs]
        futures = runner.run(inputs) if inputs else []
        for (kernel, mod, rule, args, _), future in zip(runs, futures):
            result = future.result()
            if result.error_msg or not result.run_secs:
                log.warning("%s: O2's schedule failed to run: %s", kernel.name, result.error_msg)
                continue
            run_secs = list(result.run_secs)
            database.commit_tuning_record(
                ms.database.TuningRecord(rule.trace, database.commit_workload(mod), run_secs, target, args)
            )
            committed += 1
            log.info("%s: O2's schedule runs in %.3f ms", kernel.name, 1e3 * sum(map(float, run_secs)) / len(run_secs))
    finally:
        for *_, path in runs:
            ms.utils.remove_build_dir(path)
    return committed


def tune(
    model: nn.Module,
    support_size: int,
    image_size: tuple[int, int] | None = None,
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

    Besides the trials, O2's schedule of each chosen kernel is measured once (first, with the
    same builder and runner) and stored as a record, so a later ``compile(..., level="O3")`` for
    the same target and shapes applies, per kernel, the faster of the best tuned schedule and
    O2's (see :func:`measure_default_schedules`; :attr:`TuneReport.kernels` says which).

    Args:
        model: The network (split form is exported).
        support_size: Static S to tune for (MetaSchedule needs static shapes).
        image_size: ``(H, W)``; default ``model.config.input_size`` (as for :func:`universeg_plus.compile`).
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
    if image_size is None:
        image_size = tuple(model.config.input_size)
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
    # Generous timeouts: a busy 2-core machine needs more than the default 30 s to start workers.
    builder = ms.builder.LocalBuilder(f_build=build_kernel, timeout_sec=180.0)
    runner = ms.runner.LocalRunner(timeout_sec=60.0)
    # O2's schedules first: in the database before any tuned record, so even an interrupted run
    # leaves O3 no slower than O2 on the kernels it reached
    measure_default_schedules(chosen, database, tgt, builder, runner)
    _import_tensor_intrinsics()
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
        builder=builder,
        runner=runner,
    )
    report.trials = trials
    report.kernels = [kernel_choice(database, k, tgt) for k in chosen]
    for choice in report.kernels:
        log.info("%s", choice.summary())
    report.seconds = time.perf_counter() - start
    return report


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1e3 * seconds:.3f} ms"
