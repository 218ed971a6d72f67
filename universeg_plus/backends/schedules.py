"""Rule-based CPU schedules for the fused kernels, without tuning (levels O2 and O3).

TVM 0.27 lowers ``conv2d`` on CPUs to naive serial loops (about 2 GFLOP/s here) unless
MetaSchedule tunes it. These DLight rules (:class:`tvm.s_tir.dlight.ScheduleRule`, applied by
``dl.ApplyDefaultSchedule``) give every fused kernel a fixed schedule derived from its shapes and
the target's vector unit, in the spirit of the old TOPI x86 schedules:

- :class:`Conv2dNCHW`: NCHW ``conv2d`` (OIHW weights, any stride/dilation, no groups) with fused
  elementwise epilogues (bias add, activation, ...). A register tile of ``oc_block`` output
  channels x ``w_block`` output columns (``w_block`` a multiple of the fp32 lanes) accumulates
  over ``(ic, kh, kw)``; loop order ``[n, h, oc_outer, w_outer, ic, kh, kw, oc_inner, w_inner]``,
  the oc block unrolled, ``w_inner`` vectorised, the epilogue computed per tile straight from the
  accumulators, the static ``(h, oc_outer)`` loops fused and parallel inside a serial loop over
  the ``N = B*S`` images (which may be symbolic); the padding is computed per image right before
  its convolution, as a constant fill plus a vectorised copy, both parallel.
- :class:`OuterReduction`: reductions read along their innermost output axis (``mean`` over the
  support axis: the reduction loops go inside a vector tile of that axis; ``max_pool2d``,
  strided: outer loops parallel only), the outer spatial loops parallel.
- :class:`Injective`: kernels without reductions (reshape/concat/resize/elementwise chains):
  producers inlined, outer loops fused and parallel, the innermost loop vectorised.

The rules apply to CPU (LLVM) targets only (GPU targets keep the DLight GPU rules) and return
``None`` for kernels they do not match. This module imports TVM; :mod:`.levels` imports it only when building.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.s_tir.schedule import ScheduleError
from tvm.sym import Analyzer
from tvm.tirx.analysis import undefined_vars
from tvm.target import Target
from tvm.target.codegen import llvm_get_vector_width, target_has_features

__all__ = ["Conv2dNCHW", "Injective", "OuterReduction", "VectorUnit", "conv2d_tile", "cpu_rules", "vector_unit"]

log = logging.getLogger(__name__)

_SPATIAL = tirx.IterVar.DataPar
_REDUCE = tirx.IterVar.CommReduce


@dataclass(frozen=True)
class VectorUnit:
    """A CPU's SIMD unit: ``bits`` per vector register and the number of vector registers."""

    bits: int
    registers: int

    def lanes(self, dtype_bits: int = 32) -> int:
        """Elements of ``dtype_bits`` per vector register (16 fp32 lanes for AVX-512)."""
        return max(self.bits // dtype_bits, 1)


def vector_unit(target: Target) -> VectorUnit:
    """The vector unit of an LLVM target, from its features (``mcpu``/``mattr``).

    x86: AVX-512 -> 512 bits, 32 registers; AVX/AVX2 -> 256 bits, 16 registers; SSE2 -> 128 bits.
    Other ISAs (e.g. AArch64 NEON): LLVM's vector width and 32 registers. (TVM 0.27's
    ``llvm_get_vector_width`` reports the host's width for any x86 ``mcpu``, so it is not used
    there.)
    """
    if target_has_features("avx512f", target):
        return VectorUnit(512, 32)
    if target_has_features("avx", target):
        return VectorUnit(256, 16)
    if target_has_features("sse2", target):
        return VectorUnit(128, 16)
    bits = int(llvm_get_vector_width(target))
    return VectorUnit(bits if bits > 0 else 128, 32)


def _is_cpu(target: Target) -> bool:
    return target.kind.name == "llvm"


def _extent(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV) -> int | None:
    """A loop's extent if static, else ``None`` (a symbolic extent such as ``N = B*S``)."""
    extent = sch.get(loop).extent
    return int(extent) if isinstance(extent, tirx.IntImm) else None


def _largest_divisor(n: int, limit: int, multiple_of: int = 1) -> int:
    """The largest ``d <= limit`` that divides ``n`` and is a multiple of ``multiple_of`` (else 1)."""
    for d in range(min(n, limit), 0, -1):
        if n % d == 0 and d % multiple_of == 0:
            return d
    return 1


def conv2d_tile(out_channels: int, width: int, unit: VectorUnit, dtype_bits: int = 32) -> tuple[int, int]:
    """The register tile ``(oc_block, w_block)`` of a conv with this many output channels and columns.

    Half the vector registers hold accumulators: ``oc_block`` channels x ``w_block / lanes``
    vectors (AVX-512: 8 x 32 fp32, two zmm per channel; AVX2: 4 x 16). ``w_block`` is the
    largest multiple of the lanes dividing ``width`` (at most 2 vectors, 4 when few channels are
    left), or the largest divisor of a width narrower than one vector.
    """
    lanes = unit.lanes(dtype_bits)
    accumulators = max(unit.registers // 2, 2)
    oc_block = _largest_divisor(out_channels, accumulators // 2)
    max_vectors = min(max(accumulators // oc_block, 2), 4)
    if width >= lanes and width % lanes == 0:
        w_block = _largest_divisor(width, max_vectors * lanes, multiple_of=lanes)
    else:
        w_block = _largest_divisor(width, lanes)
    return oc_block, w_block


def _block_kinds(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> list[int]:
    return [int(iv.iter_type) for iv in sch.get(block).iter_vars]


def _is_spatial(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV) -> bool:
    return all(k == _SPATIAL for k in _block_kinds(sch, block))


def _root_blocks(sch: s_tir.Schedule) -> list[s_tir.schedule.SBlockRV]:
    return list(sch.get_child_blocks(sch.get_sblock("root")))


def _around_reduction(sch: s_tir.Schedule) -> tuple[list, s_tir.schedule.SBlockRV, list] | None:
    """``(producers, reduction, epilogue)``: the root blocks before, at and after the kernel's one
    reduction block; ``None`` unless it has exactly one."""
    blocks = _root_blocks(sch)
    reductions = [i for i, b in enumerate(blocks) if not _is_spatial(sch, b)]
    if len(reductions) != 1:
        return None
    i = reductions[0]
    return blocks[:i], blocks[i], blocks[i + 1 :]


def _vectorize_innermost(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, lanes: int) -> None:
    """Vectorise the innermost loop of ``block`` (split into ``lanes`` when longer and divisible)."""
    loops = sch.get_loops(block)
    if not loops:
        return
    extent = _extent(sch, loops[-1])
    if extent is None or extent < 2:
        return
    if extent <= lanes:
        sch.vectorize(loops[-1])
    elif extent % lanes == 0:
        sch.vectorize(sch.split(loops[-1], [None, lanes])[1])


def _parallel_outer(
    sch: s_tir.Schedule, loops: list[s_tir.schedule.LoopRV]
) -> s_tir.schedule.LoopRV | None:
    """Fuse the static loops after the last symbolic one and make them parallel.

    Symbolic loops (the ``N = B*S`` batch) and those outside them stay serial: one parallel
    region per outer iteration, each over a static, evenly divisible range.
    """
    last_symbolic = max((i for i, lp in enumerate(loops) if _extent(sch, lp) is None), default=-1)
    static = loops[last_symbolic + 1 :]
    if not static:
        return None
    fused = sch.fuse(*static) if len(static) > 1 else static[0]
    sch.parallel(fused)
    return fused


def _schedule_elementwise(
    sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, lanes: int, skip: int = 0
) -> None:
    """Parallel outer loops and a vectorised innermost loop for one spatial block.

    ``skip``: leading loops that are not the block's own (shared with other blocks) and stay.
    """
    _vectorize_innermost(sch, block, lanes)
    loops = list(sch.get_loops(block))[skip:]
    if loops and sch.get(loops[-1]).kind == tirx.ForKind.VECTORIZED:
        loops = loops[:-1]
    _parallel_outer(sch, loops)


def _schedule_pad(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, lanes: int, skip: int = 0) -> None:
    """A padding stage: a constant fill plus an in-bounds copy (vectorisable), both parallel."""
    loops = sch.get_loops(block)
    if len(loops) > skip and sch.can_decompose_padding(block, loops[skip]):
        fill = sch.decompose_padding(block, loops[skip])
        _schedule_elementwise(sch, fill, lanes, skip)
    _schedule_elementwise(sch, block, lanes, skip)


# --------------------------------------------------------------------------------------------
# conv2d NCHW


@dataclass
class _Conv2dMatch:
    conv: s_tir.schedule.SBlockRV
    data: tirx.Expr  # the buffer the conv reads its input from (the padded data)
    producers: list[s_tir.schedule.SBlockRV]
    epilogue: list[s_tir.schedule.SBlockRV]


def _is_var(expr: tirx.Expr, var: tirx.Var) -> bool:
    return isinstance(expr, tirx.Var) and expr.same_as(var)


def _match_conv2d(sch: s_tir.Schedule) -> _Conv2dMatch | None:
    """The NCHW conv2d kernel structure: spatial producers, one conv block, spatial epilogue."""
    found = _around_reduction(sch)
    if found is None:
        return None
    producers, conv, epilogue = found
    stmt = sch.get(conv)
    if not stmt.name_hint.startswith("conv2d_nchw"):
        return None
    kinds = _block_kinds(sch, conv)
    if kinds != [_SPATIAL] * 4 + [_REDUCE] * 3 or len(sch.get_loops(conv)) != 7:
        return None
    n, f, _, _, rc, ry, rx = (iv.var for iv in stmt.iter_vars)
    if len(stmt.writes) != 1 or len(stmt.reads) < 2:
        return None
    out = stmt.writes[0].source
    data = weight = None
    for region in stmt.reads:
        if region.source.same_as(out):
            continue
        idx = [r.min for r in region.region]
        if len(idx) != 4:
            return None
        if all(_is_var(e, v) for e, v in zip(idx, (f, rc, ry, rx))):
            weight = region
        elif _is_var(idx[0], n) and _is_var(idx[1], rc):
            data = region
    if data is None or weight is None:
        return None  # grouped / depthwise / other layouts: not this rule
    loops = sch.get_loops(conv)
    if any(_extent(sch, lp) is None for lp in loops[1:]):
        return None  # only the batch may be symbolic
    if not all(_is_spatial(sch, b) for b in producers + epilogue):
        return None
    return _Conv2dMatch(conv=conv, data=data.source, producers=producers, epilogue=epilogue)


class _CpuRule(ScheduleRule):
    """A DLight rule for CPU (LLVM) targets: :meth:`apply` builds the schedule and hands it to
    :meth:`_rewrite`, which returns ``False`` when the kernel is not its kind; a ``ScheduleError``
    while rewriting (a kernel this rule cannot host) also gives ``None``, leaving it to other rules.
    """

    _label: str = "schedule"

    def is_target_available(self, target: Target) -> bool:
        """CPU (LLVM) targets only."""
        return _is_cpu(target)

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        """The scheduled ``func``, or ``None`` when this rule does not match it."""
        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        sch = s_tir.Schedule(func)
        try:
            if not self._rewrite(sch, target):
                return None
        except ScheduleError as exc:
            log.debug("%s rule does not apply: %s", self._label, str(exc).splitlines()[0])
            return None
        return sch

    def _rewrite(self, sch: s_tir.Schedule, target: Target) -> bool:
        raise NotImplementedError


class Conv2dNCHW(_CpuRule):
    """Register-tiled, vectorised, parallel direct convolution for NCHW ``conv2d`` kernels on CPUs.

    Tensors: data ``(N, C, H, W)`` (padded by its own stage), weight ``(O, C, KH, KW)``, output
    ``(N, O, OH, OW)``; ``N`` may be symbolic (``B*S``), the rest must be static.

    Args:
        oc_block: Output channels per register tile (default: from :func:`conv2d_tile`).
        w_block: Output columns per register tile (default: from :func:`conv2d_tile`).
    """

    def __init__(self, oc_block: int | None = None, w_block: int | None = None) -> None:
        self.oc_block = oc_block
        self.w_block = w_block

    _label = "conv2d"

    def _rewrite(self, sch: s_tir.Schedule, target: Target) -> bool:
        """Schedules an NCHW conv2d kernel; ``False`` for any other kernel."""
        match = _match_conv2d(sch)
        if match is None:
            return False
        self._schedule(sch, match, vector_unit(target))
        return True

    def _schedule(self, sch: s_tir.Schedule, match: _Conv2dMatch, unit: VectorUnit) -> None:
        conv = match.conv
        lanes = unit.lanes(32)
        if match.epilogue:
            for block in match.epilogue[:-1]:
                sch.compute_inline(block)
            epilogue = match.epilogue[-1]
        else:  # accumulate in a tile-local buffer, copy the finished tile out
            epilogue = sch.cache_write(conv, 0, "global")
        n, f, y, x, rc, ry, rx = sch.get_loops(conv)
        oc_block, w_block = conv2d_tile(_extent(sch, f), _extent(sch, x), unit)
        oc_block, w_block = self.oc_block or oc_block, self.w_block or w_block
        fo, fi = sch.split(f, [None, oc_block])
        xo, xi = sch.split(x, [None, w_block])
        # image by image (N = B*S may be symbolic); rows outside channel blocks, so one output
        # row's input rows stay in L2 for all channel blocks; (row, block) pairs are parallel
        sch.reorder(n, y, fo, xo, rc, ry, rx, fi, xi)
        sch.parallel(sch.fuse(y, fo))
        sch.reverse_compute_at(epilogue, xo, preserve_unit_loops=True)
        sch.unroll(fi)
        if w_block > 1:
            sch.vectorize(xi)
        sch.decompose_reduction(conv, rc)
        _vectorize_innermost(sch, epilogue, w_block)
        # padding per image, right before its convolution: it is still in cache, and the padded
        # buffer shrinks from N images to one; other producers (none in this network) run once
        for block in match.producers:
            if any(w.source.same_as(match.data) for w in sch.get(block).writes):
                sch.compute_at(block, n, preserve_unit_loops=True)
                _schedule_pad(sch, block, lanes, skip=1)
            else:
                _schedule_elementwise(sch, block, lanes)


# --------------------------------------------------------------------------------------------
# reductions over non-innermost axes (mean over S, pooling windows)


def _uses(expr: tirx.Expr, var: tirx.Var) -> bool:
    return any(v.same_as(var) for v in undefined_vars(expr))


def _inputs(stmt: s_tir.SBlock) -> list:
    """The regions a block reads, other than its own output (a reduction reads what it writes)."""
    out = stmt.writes[0].source
    return [r for r in stmt.reads if not r.source.same_as(out)]


class OuterReduction(_CpuRule):
    """Reductions whose inputs are read along the innermost *spatial* axis, on CPUs.

    ``mean`` over the support axis ``(1, S, C, H, W) -> (1, 1, C, H, W)`` (unit stride): the
    reduction loops move inside a tile of the innermost output axis (``[spatial..., w_outer,
    reduce..., w_inner]``), so each step is a vector load and a vector add; the outer spatial
    loops are parallel; a trailing elementwise block (the mean's division) is computed per tile.
    ``max_pool2d`` ``(N, C, H, W) -> (N, C, H/2, W/2)`` (stride 2 along W): memory bound, and
    strided vector loads are slower than LLVM's own code for the original loop order, so its
    outer spatial loops are only made parallel. Reductions over the innermost axis (softmax,
    norms) are left to DLight's ``Reduction``.
    """

    _label = "outer-reduction"

    def _rewrite(self, sch: s_tir.Schedule, target: Target) -> bool:
        """Schedules such a reduction; ``False`` for any other kernel."""
        found = _around_reduction(sch)
        if found is None:
            return False
        producers, red, epilogue = found
        if not self._matches(sch, red) or len(epilogue) > 1:
            return False
        for block in producers:
            sch.compute_inline(block)
        self._schedule(sch, red, epilogue[0] if epilogue else None, vector_unit(target).lanes(32))
        return True

    @staticmethod
    def _matches(sch: s_tir.Schedule, red: s_tir.schedule.SBlockRV) -> bool:
        stmt = sch.get(red)
        kinds = _block_kinds(sch, red)
        n_spatial = kinds.index(_REDUCE) if _REDUCE in kinds else len(kinds)
        if n_spatial == 0 or any(k != _REDUCE for k in kinds[n_spatial:]) or stmt.init is None:
            return False
        loops = sch.get_loops(red)
        if len(loops) != len(kinds) or _extent(sch, loops[n_spatial - 1]) is None:
            return False
        inner = stmt.iter_vars[n_spatial - 1].var
        # every input is indexed by the innermost output axis in its own innermost dimension
        reads = _inputs(stmt)
        return bool(reads) and all(r.region and _uses(r.region[-1].min, inner) for r in reads)

    @staticmethod
    def _schedule(
        sch: s_tir.Schedule, red: s_tir.schedule.SBlockRV, epilogue: s_tir.schedule.SBlockRV | None, lanes: int
    ) -> None:
        stmt = sch.get(red)
        kinds = _block_kinds(sch, red)
        n_spatial = kinds.index(_REDUCE)
        loops = sch.get_loops(red)
        spatial, reduce = list(loops[:n_spatial]), list(loops[n_spatial:])
        inner_var = stmt.iter_vars[n_spatial - 1].var
        analyzer = Analyzer()
        unit_stride = all(
            not _uses(analyzer.simplify(r.region[-1].min - inner_var), inner_var) for r in _inputs(stmt)
        )
        if not unit_stride:  # pooling windows: parallel outer loops, LLVM vectorises the rest
            _parallel_outer(sch, spatial[:-1])
            if epilogue is not None:
                _schedule_elementwise(sch, epilogue, lanes)
            return
        inner = spatial[-1]
        width = _extent(sch, inner)
        if width % lanes == 0:
            block_w = _largest_divisor(width, 4 * lanes, multiple_of=lanes)
        else:  # one tile of the whole axis, vectorised only when short
            block_w = width
        if block_w < width:
            xo, xi = sch.split(inner, [None, block_w])
            outer = [*spatial[:-1], xo]
        else:
            xi = inner
            outer = spatial[:-1]
        sch.reorder(*outer, *reduce, xi)
        if 1 < block_w <= 4 * lanes:
            sch.vectorize(xi)
        _parallel_outer(sch, outer)
        if epilogue is not None and outer:
            # the loop right above the reduction loops (``outer`` was fused: look it up again)
            tile = sch.get_loops(red)[-(len(reduce) + 2)]
            sch.reverse_compute_at(epilogue, tile, preserve_unit_loops=True)
            _vectorize_innermost(sch, epilogue, block_w)
        elif epilogue is not None:
            _schedule_elementwise(sch, epilogue, lanes)
        sch.decompose_reduction(red, sch.get_loops(red)[-(len(reduce) + 1)])


# --------------------------------------------------------------------------------------------
# injective kernels


class Injective(_CpuRule):
    """Kernels without reductions (reshape, concat, resize, elementwise chains) on CPUs.

    Producers are inlined where TVM allows; each remaining block gets its outer loops fused and
    parallel (static loops inside a symbolic one) and its innermost loop vectorised.
    """

    _label = "injective"

    def _rewrite(self, sch: s_tir.Schedule, target: Target) -> bool:
        """Schedules a kernel without reductions; ``False`` when it has one."""
        blocks = _root_blocks(sch)
        if not blocks or not all(_is_spatial(sch, b) for b in blocks):
            return False
        lanes = vector_unit(target).lanes(32)
        remaining = list(blocks)
        progress = True
        while progress and len(remaining) > 1:
            progress = False
            for block in remaining[:-1]:
                try:
                    sch.compute_inline(block)
                except ScheduleError:
                    continue
                remaining.remove(block)
                progress = True
                break
        for block in remaining:
            if sch.get_loops(block):
                _schedule_elementwise(sch, block, lanes)
        return True


def cpu_rules() -> list[ScheduleRule]:
    """Level O2's CPU rules, in the order ``ApplyDefaultSchedule`` tries them (first match wins).

    ``Conv2dNCHW``, ``OuterReduction``, DLight's ``GEMV`` and ``Reduction`` (row reductions such
    as softmax and norms), then ``Injective`` for every kernel without a reduction.
    """
    from tvm.s_tir import dlight as dl

    return [Conv2dNCHW(), OuterReduction(), dl.cpu.GEMV(), dl.cpu.Reduction(), Injective()]
