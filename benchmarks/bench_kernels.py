"""The network's dominant convolution kernels side by side: TVM O2 rule vs PyTorch vs onnxruntime.

    python benchmarks/bench_kernels.py                              # S=16, 128x128, top 8 by FLOPs
    python benchmarks/bench_kernels.py --support-size 64 --top 4 --rounds 7 --naive

universeg-v1 (random weights) is exported in its split form with a static S and fused as level
O2 fuses it; its fused conv2d kernels are ranked by FLOPs x calls per forward. Each kernel is
built alone with O2's CPU rules (``universeg_plus.backends.schedules``) and run next to the same
operator (``Conv2d`` + the model's activation when the kernel fuses one) in eager PyTorch and in
onnxruntime, on the same random inputs and weights; timings are medians over interleaved rounds
(every round runs every path of every kernel once, each call after ``--pause`` seconds of idle so
the previous runtime's spinning worker threads do not compete with it). ``--naive`` adds one call of the unscheduled
kernel (level O1's code, slow). Parity: max |TVM - torch| per kernel. Writes ``<out>.md`` and
``<out>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from universeg_plus import create_model
from universeg_plus.backends.export import export_relax
from universeg_plus.backends.levels import fuse_passes
from universeg_plus.backends.targets import describe_target, resolve_target
from universeg_plus.devices import cpu_model
from universeg_plus.nn import make_activation

log = logging.getLogger("bench_kernels")


@dataclass
class Kernel:
    """One fused conv2d kernel: shapes ``data (N, C, H, W)``, ``weight (O, C, KH, KW)``, ``out (N, O, OH, OW)``."""

    name: str
    func: Any
    data: tuple[int, ...]
    weight: tuple[int, ...]
    out: tuple[int, ...]
    bias: bool
    activation: bool
    calls: int
    gflop: float  # per call
    times: dict[str, list[float]] = field(default_factory=dict)
    max_abs_diff: float = 0.0


def _shape(param: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in param.ty.shape)


def conv_kernels(model: nn.Module, support_size: int, image_size: int, target: Any) -> list[Kernel]:
    """The fused conv2d kernels of the network (as O2 fuses them), most FLOPs per forward first."""
    import tvm
    from tvm.s_tir.analysis import estimate_tir_flops

    from universeg_plus.backends.schedules import Conv2dNCHW

    mod = export_relax(model, 1, support_size, (image_size, image_size))
    with target:
        fused = tvm.transform.Sequential(fuse_passes(target))(mod)
    calls_text = fused.script()  # main calls each kernel as ``R.call_tir(cls.<name>, (...``
    kernels = []
    for gv, func in fused.functions_items():
        if not isinstance(func, tvm.tirx.PrimFunc) or Conv2dNCHW().apply(func, target, False) is None:
            continue
        shapes = [_shape(p) for p in func.params]
        sch = tvm.s_tir.Schedule(func)
        blocks = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
        conv_at = next(i for i, b in enumerate(blocks) if b.startswith("conv2d_nchw"))
        epilogue = blocks[conv_at + 1 :]
        kernels.append(
            Kernel(
                name=gv.name_hint,
                func=func,
                data=shapes[0],
                weight=shapes[1],
                out=shapes[-1],
                bias=len(shapes) == 4,
                activation=len(epilogue) > 1,  # bias add, then the activation
                calls=calls_text.count(f"cls.{gv.name_hint}, ("),
                gflop=float(estimate_tir_flops(tvm.IRModule({"main": func}))) / 1e9,
            )
        )
    return sorted(kernels, key=lambda k: -k.gflop * k.calls)


class _Reference(nn.Module):
    """``Conv2d`` (+ activation) with a kernel's weights: the same operator for torch and ONNX."""

    def __init__(self, k: Kernel, weight: np.ndarray, bias: np.ndarray | None, act: nn.Module | None) -> None:
        super().__init__()
        o, c, kh, kw = k.weight
        stride = k.data[2] // k.out[2]
        self.conv = nn.Conv2d(c, o, (kh, kw), stride=stride, padding=(kh // 2, kw // 2), bias=bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(weight))
            if bias is not None:
                self.conv.bias.copy_(torch.from_numpy(bias.reshape(-1)))
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.act(y) if self.act is not None else y


def _paths(k: Kernel, target: Any, act: nn.Module | None, threads: int, naive: bool) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables per path, each running the kernel once on fixed inputs."""
    import onnxruntime as ort
    import tvm
    import tvm.s_tir.dlight as dl

    from universeg_plus.backends.schedules import cpu_rules

    rng = np.random.default_rng(0)
    x = rng.standard_normal(k.data).astype("float32")
    w = (rng.standard_normal(k.weight) / np.sqrt(np.prod(k.weight[1:]))).astype("float32")
    b = rng.standard_normal((1, k.weight[0], 1, 1)).astype("float32") if k.bias else None
    dev = tvm.cpu()
    args = [tvm.runtime.tensor(a, dev) for a in (x, w, *([b] if b is not None else []))]
    args.append(tvm.runtime.tensor(np.zeros(k.out, "float32"), dev))

    def build(scheduled: bool) -> Callable[[], Any]:
        mod = tvm.IRModule({"main": k.func.with_attr("global_symbol", "main")})
        with target:
            if scheduled:
                mod = dl.ApplyDefaultSchedule(*cpu_rules())(mod)
            f = tvm.compile(mod, target=target)["main"]
        return lambda: f(*args)

    ref = _Reference(k, w, b, act).eval()
    xt = torch.from_numpy(x)

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return ref(xt)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ref, (xt,), buf, dynamo=False, input_names=["x"], output_names=["y"], opset_version=17)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
    paths = {"tvm-O2": build(True), "torch": eager, "onnxruntime": lambda: session.run(None, {"x": x})[0]}
    if naive:
        paths["tvm-naive"] = build(False)
    paths["tvm-O2"]()
    k.max_abs_diff = float(np.abs(args[-1].numpy() - eager().numpy()).max())
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--support-size", type=int, default=16)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--top", type=int, default=8, help="the K kernels with the most FLOPs per forward")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--naive", action="store_true", help="also time one call of each unscheduled kernel")
    p.add_argument("--pause", type=float, default=0.05, help="seconds of idle before each timed call")
    p.add_argument(
        "--target", default=None, help='TVM target as JSON (default: this CPU), e.g. {"kind": "llvm", "mcpu": "znver3"}'
    )
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_kernels")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    torch.manual_seed(0)
    model = create_model("universeg-v1").eval()
    act = make_activation(model.config.activation, model.config.negative_slope)
    target = resolve_target(args.target)
    kernels = conv_kernels(model, args.support_size, args.image_size, target)
    total = sum(k.gflop * k.calls for k in kernels)
    chosen = kernels[: args.top]
    runners = {}
    for k in chosen:
        log.info("building %s", k.name)
        runners[k.name] = _paths(k, target, act if k.activation else None, args.threads, args.naive)
        k.times = {name: [] for name in runners[k.name]}
    for r in range(args.rounds):
        for k in chosen:
            for name, fn in runners[k.name].items():
                if name == "tvm-naive" and k.times[name]:
                    continue
                time.sleep(args.pause)  # let the previous runtime's spinning worker threads go idle
                start = time.perf_counter()
                fn()
                k.times[name].append(time.perf_counter() - start)
        log.info("round %d done", r)
    result = {
        "machine": {
            "cpu_model": cpu_model(),
            "threads": args.threads,
            "target": describe_target(target),
            "torch": torch.__version__,
            "python": platform.python_version(),
            **_versions(),
        },
        "command": "python benchmarks/bench_kernels.py "
        + f"--support-size {args.support_size} --image-size {args.image_size} --top {args.top} "
        + f"--rounds {args.rounds} --threads {args.threads} --pause {args.pause}"
        + (" --naive" if args.naive else "")
        + (f" --target '{args.target}'" if args.target else ""),
        "conv_gflop_per_forward": total,
        "kernels": [
            {
                "name": k.name,
                "data": k.data,
                "weight": k.weight,
                "calls": k.calls,
                "gflop_per_call": k.gflop,
                "median_s": {n: statistics.median(t) for n, t in k.times.items()},
                "max_abs_diff_vs_torch": k.max_abs_diff,
            }
            for k in chosen
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    text = _markdown(result)
    args.out.with_suffix(".md").write_text(text)
    print(text)


def _markdown(result: dict) -> str:
    m = result["machine"]
    paths = list(result["kernels"][0]["median_s"]) if result["kernels"] else []
    lines = [
        f"Machine: {m['cpu_model']}, {m['threads']} threads; TVM target {m['target']}; torch {m['torch']}, "
        f"TVM {m.get('tvm', '-')}, onnxruntime {m.get('onnxruntime', '-')}.",
        f"Command: `{result['command']}`",
        f"Conv FLOPs per forward: {result['conv_gflop_per_forward']:.1f} GFLOP. Cells: median ms per call (GFLOP/s).",
        "",
        "| kernel | data (N,C,H,W) | weight | calls | GFLOP/call | "
        + " | ".join(paths)
        + " | TVM/ORT time | max abs diff |",
        "|---|---|---|---|---|" + "---|" * len(paths) + "---|---|",
    ]
    for k in result["kernels"]:
        med = k["median_s"]
        cells = [f"{med[p] * 1e3:.2f} ({k['gflop_per_call'] / med[p]:.0f})" for p in paths]
        lines.append(
            f"| {k['name']} | {tuple(k['data'])} | {tuple(k['weight'])} | {k['calls']} | {k['gflop_per_call']:.2f} | "
            + " | ".join(cells)
            + f" | {med['tvm-O2'] / med['onnxruntime']:.2f} | {k['max_abs_diff_vs_torch']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    out = {}
    for name in ("tvm", "onnxruntime"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


if __name__ == "__main__":
    main()
