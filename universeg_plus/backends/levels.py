"""Optimisation levels O0..O3: exactly which Relax passes, schedules and codegen each applies.

Almost every Relax pass is registered at ``PassContext`` opt_level 0, so a level here is the list
of passes and schedules the library runs, not a ``PassContext`` number.

=====  =======================================================================================
Level  What it applies (in order)
=====  =======================================================================================
O0     ``LegalizeOps`` (operators -> naive TIR loops) and the VM lowering passes. No constant
       folding, no fusion, no schedules; generic target (no ``mcpu``). This is what
       ``relax.get_pipeline("default_build")`` does.
O1     The target's default Relax pipeline (``relax.get_default_pipeline``): library dispatch,
       ``LegalizeOps``, ``AnnotateTIROpPattern``, ``FoldConstant``, ``FuseOps``, ``FuseTIR``
       (the zero pipeline), then VM lowering. Operator fusion, still naive loops and a generic
       target.
O2     O1 with host-CPU codegen (``mcpu`` of this machine, e.g. AVX2/AVX-512 vector code) and,
       after fusion, ``ApplyDefaultSchedule`` with the rules of :mod:`.schedules` and DLight's
       CPU defaults, first match per kernel: ``Conv2dNCHW`` (register-tiled, vectorised,
       parallel direct conv with its fused epilogue; padding per image), ``OuterReduction``
       (mean over S, max-pool), DLight ``GEMV`` and ``Reduction``, then ``Injective`` (every
       kernel without a reduction: inlined, parallel, vectorised). No tuning.
O3     O1 + host-CPU codegen, then after fusion ``MetaScheduleApplyDatabase``: every fused
       kernel found in the tuning database (``universeg-plus tune``) gets the schedule of its
       fastest record there. For each kernel it tunes, ``tune`` stores MetaSchedule's measured
       candidates and also O2's schedule of that kernel (the rule's trace, measured by the same
       runner), so this is the faster of the best tuned schedule and O2's, as measured during
       tuning. Then ``ApplyDefaultSchedule`` as in O2 for the kernels not in the database.
=====  =======================================================================================
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LEVELS",
    "LEVEL_DESCRIPTIONS",
    "PIPELINE_REVISION",
    "build_pipeline",
    "check_level",
    "default_schedule",
    "schedule_rules",
    "uses_host_cpu",
]

LEVELS = ("O0", "O1", "O2", "O3")

# Part of the cache key: bump whenever what a level applies changes, so cached libraries built by
# an older pipeline are rebuilt. 2: O2/O3 schedule kernels with the rules of .schedules.
PIPELINE_REVISION = 2

LEVEL_DESCRIPTIONS = {
    "O0": "LegalizeOps + VM lowering; no folding, no fusion, no schedules; generic CPU",
    "O1": "default Relax pipeline: legalize, FoldConstant, FuseOps, FuseTIR + VM lowering; generic CPU",
    "O2": (
        "O1 + host-CPU codegen (mcpu) + rule-based CPU schedules, no tuning: Conv2dNCHW, OuterReduction, "
        "DLight GEMV/Reduction, Injective"
    ),
    "O3": (
        "O1 + host-CPU codegen + per tuned kernel the faster (as measured by `universeg-plus tune`) of its best "
        "MetaSchedule schedule and O2's rule schedule, from the tuning database; O2's rules for the rest"
    ),
}


def check_level(level: str) -> str:
    """Return ``level`` if it is one of ``LEVELS``; raise ``ValueError`` otherwise."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return level


def uses_host_cpu(level: str) -> bool:
    """Whether a level compiles for the detected host CPU when no target is given."""
    return check_level(level) in ("O2", "O3")


def _backend(target: Any) -> Any:
    """The target's pass lists (``library_dispatch_passes``, ``legalize_passes``, ...)."""
    if target.kind.name == "llvm":
        from tvm.relax.backend.cpu_generic import pipeline
    elif target.kind.name == "cuda":
        from tvm.relax.backend.cuda import pipeline
    else:
        raise ValueError(f"unsupported target kind {target.kind.name!r}; use llvm (CPU) or cuda")
    return pipeline


def fuse_passes(target: Any) -> list:
    """Dispatch + legalize + fold + fuse: the shared preparation of O1..O3 and of task extraction."""
    b = _backend(target)
    return b.library_dispatch_passes(target) + b.legalize_passes(target)


def schedule_rules(target: Any) -> list:
    """The untuned schedule rules of ``target``, in the order they are tried (first match wins).

    GPU: the DLight GPU rules (the minimum for kernels to get thread bindings). CPU (O2, O3):
    ``Conv2dNCHW``, ``OuterReduction`` (:mod:`.schedules`), DLight ``GEMV``, ``Reduction``, then
    ``Injective`` (:mod:`.schedules`) for what is left.
    """
    import tvm.s_tir.dlight as dl

    if "gpu" in target.keys:
        return [dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()]
    from .schedules import cpu_rules

    return cpu_rules()


def _default_schedules(target: Any) -> Any:
    """The untuned schedules: ``ApplyDefaultSchedule`` with :func:`schedule_rules`."""
    import tvm.s_tir.dlight as dl

    return dl.ApplyDefaultSchedule(*schedule_rules(target))


def default_schedule(func: Any, target: Any) -> Any | None:
    """The schedule O2 gives one kernel (a ``PrimFunc``), or ``None`` when no rule matches.

    The same choice ``ApplyDefaultSchedule`` makes at O2: the first of :func:`schedule_rules`
    whose ``apply`` returns a schedule. The schedule is traced, so its ``trace`` replays the rule
    on the kernel; :func:`.tuning.tune` measures it and stores it as a tuning record (level O3).
    """
    import tvm
    from tvm import s_tir

    if not isinstance(func, tvm.tirx.PrimFunc):
        return None
    for rule in schedule_rules(target):
        space = rule.apply(func, target, False)
        if space is None:
            continue
        return space if isinstance(space, s_tir.Schedule) else space[0]
    return None


def build_pipeline(level: str, target: Any, database: Any = None) -> Any:
    """The Relax pipeline (a ``tvm.transform.Pass``) of ``level`` for ``target``.

    Args:
        level: One of ``LEVELS``.
        target: A ``tvm.target.Target``.
        database: For ``O3``, the ``meta_schedule`` database to apply (required there).
    """
    import tvm
    from tvm import relax

    check_level(level)
    if level == "O3" and database is None:
        raise ValueError("level O3 needs a tuning database")

    @tvm.transform.module_pass(opt_level=0, name=f"universeg_plus_{level}_pipeline")
    def _pipeline(mod: Any, _ctx: Any) -> Any:
        # Passes that read the target (and the database) must be made inside their contexts.
        with target:
            if database is None:
                return tvm.transform.Sequential(_passes(level, target))(mod)
            with database:
                return tvm.transform.Sequential(_passes(level, target))(mod)

    return _pipeline


def _passes(level: str, target: Any) -> list:
    from tvm import relax

    is_gpu = "gpu" in target.keys
    backend = _backend(target)
    lower = backend.dataflow_lower_passes(target) + backend.finalize_passes(target)
    if level == "O0":
        # GPU kernels need thread bindings: the DLight fallback is the least that runs there.
        return [relax.transform.LegalizeOps(), *([_default_schedules(target)] if is_gpu else []), *lower]
    if level == "O1":
        return [*fuse_passes(target), *([_default_schedules(target)] if is_gpu else []), *lower]
    if level == "O2":
        return [*fuse_passes(target), _default_schedules(target), *lower]
    return [
        *fuse_passes(target),
        relax.transform.MetaScheduleApplyDatabase(),
        _default_schedules(target),
        *lower,
    ]
