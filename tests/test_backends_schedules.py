"""Rule-based CPU schedules of levels O2/O3 (``universeg_plus.backends.schedules``).

Small convolution nets built here (torch -> Relax -> the O2 pipeline) are checked against torch,
with a symbolic batch (the support stream's ``N = B*S``) and on a second vector width; the tiny
network's fused kernels are checked to all get a schedule.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

tvm = pytest.importorskip("tvm", reason="apache-tvm is not installed (extra: universeg-plus[tvm])")

from tvm import relax  # noqa: E402

from universeg_plus import create_model  # noqa: E402
from universeg_plus.backends.export import export_relax  # noqa: E402
from universeg_plus.backends.levels import _default_schedules, build_pipeline, fuse_passes  # noqa: E402
from universeg_plus.backends.parity import PARITY_TOLERANCE  # noqa: E402
from universeg_plus.backends.schedules import (  # noqa: E402
    Conv2dNCHW,
    Injective,
    OuterReduction,
    VectorUnit,
    conv2d_tile,
    vector_unit,
)
from universeg_plus.backends.targets import resolve_target  # noqa: E402

GENERIC_X86 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "num-cores": 2}  # SSE2: 4 fp32 lanes


class ConvBlock(nn.Module):
    """conv3x3 -> leaky relu -> conv3x3 (no epilogue) -> max-pool -> mean over the batch."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.a = nn.Conv2d(c_in, c_mid, 3, padding=1)
        self.b = nn.Conv2d(c_mid, c_out, 3, padding=1, stride=stride, bias=False)
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.b(self.act(self.a(x)))
        return y, nn.functional.max_pool2d(y, 2).mean(dim=0, keepdim=True)


def _relax(net: nn.Module, example: torch.Tensor, symbolic_batch: bool):
    from tvm.relax.frontend.torch import from_exported_program

    dynamic = ({0: torch.export.Dim("n", min=1, max=64)},) if symbolic_batch else None
    with torch.no_grad():
        program = torch.export.export(net.eval(), (example,), dynamic_shapes=dynamic)
    return from_exported_program(program, keep_params_as_input=False)


def _scheduled(mod, target):
    """The module after O2's fusion and schedules (before lowering): {kernel name: PrimFunc}."""
    with target:
        out = tvm.transform.Sequential([*fuse_passes(target), _default_schedules(target)])(mod)
    return {gv.name_hint: f for gv, f in out.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}


def _run(mod, target, x: torch.Tensor) -> list[torch.Tensor]:
    vm = relax.VirtualMachine(tvm.compile(mod, target=target, relax_pipeline=build_pipeline("O2", target)), tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(x.numpy()))
    return [torch.from_numpy(out[i].numpy()) for i in range(len(out))]


@pytest.mark.parametrize("spec", [None, GENERIC_X86], ids=["host", "generic-x86"])
@pytest.mark.parametrize(
    "shape, channels, stride",
    [((2, 3, 16, 32), (8, 16), 1), ((3, 5, 12, 20), (6, 3), 1), ((2, 4, 16, 16), (8, 8), 2)],
    ids=["aligned", "odd-channels-and-width", "stride-2"],
)
def test_conv_rule_matches_torch(spec, shape, channels, stride):
    target = resolve_target(spec)
    torch.manual_seed(1)
    net = ConvBlock(shape[1], *channels, stride=stride)
    x = torch.randn(*shape)
    mod = _relax(net, x, symbolic_batch=False)
    kernels = _scheduled(mod, target)
    convs = {n: f for n, f in kernels.items() if "conv2d" in n}
    assert len(convs) == 2
    for name, func in convs.items():
        text = func.script()
        assert func.attrs.get("tirx.is_scheduled"), name
        assert "T.parallel(" in text and "T.vectorized(" in text and "T.unroll(" in text, name
    with torch.no_grad():
        expected = net(x)
    for got, want in zip(_run(mod, target, x), expected):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=PARITY_TOLERANCE, rtol=0)


def _loops(func) -> list:
    """Every ``For`` of a PrimFunc, outermost first."""
    import tvm_ffi

    found: list = []
    tvm_ffi.structural_walk(func.body, (tvm.tirx.For, found.append), order="pre")
    return found


def test_symbolic_batch_is_an_outer_serial_loop_and_serves_any_size():
    target = resolve_target(None)
    torch.manual_seed(2)
    net = ConvBlock(2, 16, 8)
    mod = _relax(net, torch.randn(2, 2, 16, 32), symbolic_batch=True)
    convs = {n: f for n, f in _scheduled(mod, target).items() if "conv2d" in n}
    assert len(convs) == 2
    for name, func in convs.items():
        loops = _loops(func)
        symbolic = [lp for lp in loops if not isinstance(lp.extent, tvm.tirx.IntImm)]
        parallel = [lp for lp in loops if lp.kind == tvm.tirx.ForKind.PARALLEL]
        # N = B*S is a plain outer loop; the static (h, oc) loops inside it are parallel
        assert symbolic and all(lp.kind == tvm.tirx.ForKind.SERIAL for lp in symbolic), name
        assert parallel and all(isinstance(lp.extent, tvm.tirx.IntImm) for lp in parallel), name
        assert any(lp.kind == tvm.tirx.ForKind.VECTORIZED for lp in loops), name
    vm = relax.VirtualMachine(tvm.compile(mod, target=target, relax_pipeline=build_pipeline("O2", target)), tvm.cpu())
    for n in (1, 3, 17):
        x = torch.randn(n, 2, 16, 32)
        out = vm["main"](tvm.runtime.tensor(x.numpy()))
        with torch.no_grad():
            want = net(x)
        for i, w in enumerate(want):
            torch.testing.assert_close(torch.from_numpy(out[i].numpy()), w, atol=PARITY_TOLERANCE, rtol=0)


def test_every_kernel_of_the_network_gets_a_schedule():
    target = resolve_target(None)
    model = create_model("universeg-tiny").eval()
    kernels = _scheduled(export_relax(model, 1, None, (32, 32)), target)
    unscheduled = [n for n, f in kernels.items() if not f.attrs.get("tirx.is_scheduled")]
    assert not unscheduled
    convs = [n for n in kernels if "conv2d" in n]
    assert convs and all("T.parallel(" in kernels[n].script() for n in convs)
    # the mean over S: vector tiles; pooling (strided, memory bound): parallel outer loops
    for name, mark in (("mean", "T.vectorized("), ("max_pool2d", "T.parallel(")):
        assert any(n.startswith(name) for n in kernels), name
        assert all(mark in f.script() for n, f in kernels.items() if n.startswith(name)), name


def test_grouped_conv_is_left_to_the_fallback_and_stays_correct():
    target = resolve_target(None)
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.ReLU())
    x = torch.randn(2, 4, 8, 16)
    mod = _relax(net, x, symbolic_batch=False)
    with target:
        fused = tvm.transform.Sequential(fuse_passes(target))(mod)
    funcs = [f for f in fused.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    assert funcs and all(Conv2dNCHW().apply(f, target, False) is None for f in funcs)
    with torch.no_grad():
        torch.testing.assert_close(_run(mod, target, x)[0], net(x), atol=PARITY_TOLERANCE, rtol=0)


def test_rules_are_cpu_only():
    cpu = resolve_target(None)
    cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_80"})
    net = ConvBlock(2, 8, 8)
    mod = _relax(net, torch.randn(2, 2, 8, 16), symbolic_batch=False)
    with cpu:
        fused = tvm.transform.Sequential(fuse_passes(cpu))(mod)
    funcs = {gv.name_hint: f for gv, f in fused.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}
    conv = next(f for n, f in funcs.items() if "conv2d" in n)
    assert Conv2dNCHW().apply(conv, cpu, False) is not None
    for rule in (Conv2dNCHW(), OuterReduction(), Injective()):
        assert all(rule.apply(f, cuda, False) is None for f in funcs.values())
    gpu_rules = [type(r).__name__ for r in _default_schedules(cuda).rules]
    assert gpu_rules == ["Matmul", "GEMV", "Reduction", "GeneralReduction", "Fallback"]


def test_vector_unit_and_register_tile():
    avx512 = vector_unit(tvm.target.Target({"kind": "llvm", "mcpu": "skylake-avx512"}))
    avx2 = vector_unit(tvm.target.Target({"kind": "llvm", "mcpu": "znver3"}))
    sse2 = vector_unit(tvm.target.Target(GENERIC_X86))
    assert (avx512, avx2, sse2) == (VectorUnit(512, 32), VectorUnit(256, 16), VectorUnit(128, 16))
    assert avx512.lanes(32) == 16 and avx2.lanes(32) == 8
    # 16 accumulators (8 channels x 2 zmm) on AVX-512, 8 (4 x 2 ymm) on AVX2
    assert conv2d_tile(64, 128, avx512) == (8, 32)
    assert conv2d_tile(64, 128, avx2) == (4, 16)
    assert conv2d_tile(1, 128, avx512) == (1, 64)  # one output channel: wider rows instead
    assert conv2d_tile(6, 20, avx512) == (6, 10)  # no multiple of the lanes divides 20
    assert conv2d_tile(64, 8, avx512) == (8, 8)
