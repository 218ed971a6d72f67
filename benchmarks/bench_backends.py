"""Inference paths side by side: eager (pairwise, split), torch.compile, onnxruntime, TVM O0..O3.

    python benchmarks/bench_backends.py                                   # B=1, 128x128, S in {16, 64}
    python benchmarks/bench_backends.py --sizes 16 --rounds 5 --slow-rounds 2 --paths split tvm-O2

Every path runs the same random inputs (seeded) through universeg-v1 (random weights: speed and
parity do not depend on them). Timings are medians over interleaved rounds (each round runs every
path and S in turn, so slow drifts of a shared machine hit all paths alike), after one untimed
warm-up call; paths whose first call takes longer than ``--slow-after`` seconds (the untuned TVM
levels) get ``--slow-rounds`` timed calls and no warm-up (stated in the table). Build time: first
calls of torch.compile (one static graph per S); ONNX export + session per S; TVM cold build into an
empty cache (and the reload from it). Peak memory: in a fresh process per (path, S), the growth of
the peak RSS (VmHWM) over the first call after building (Linux). Parity: max |delta logit| against
the split eager fp32 logits. TVM O0..O2 are one symbolic-S module each (serving every S); O3 is
built per S from the MetaSchedule database (``universeg-plus tune``).
Writes ``<out>.md`` and ``<out>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch

from universeg_plus import create_model
from universeg_plus.backends.export import example_inputs
from universeg_plus.devices import cpu_model

EAGER = ("pairwise", "split", "torch.compile", "onnxruntime")
TVM_LEVELS = ("tvm-O0", "tvm-O1", "tvm-O2", "tvm-O3")
LABELS = {
    "pairwise": "official pairwise, eager",
    "split": "split (default), eager",
    "torch.compile": "split, torch.compile",
    "onnxruntime": "split, onnxruntime",
    "tvm-O0": "split, TVM O0 (no fusion), symbolic S",
    "tvm-O1": "split, TVM O1 (default pipeline), symbolic S",
    "tvm-O2": "split, TVM O2 (+ host CPU, rule-based conv/elementwise schedules), symbolic S",
    "tvm-O3": "split, TVM O3 (per tuned kernel the faster of MetaSchedule and O2, O2 rules for the rest), static S",
}

log = logging.getLogger("bench_backends")


def _vmhwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not in /proc/self/status (Linux only)")


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, float, torch.Tensor]:
    """(seconds, peak RSS growth in MiB, output) of one call."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    base = _vmhwm_kib()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    return seconds, (_vmhwm_kib() - base) / 1024, out


def build_paths(args: argparse.Namespace, model: torch.nn.Module, sizes: list[int]) -> dict[str, SimpleNamespace]:
    """Build the requested paths (timed); each gets ``fn(target, support_images, support_labels)``."""
    h = w = args.image_size
    builders: dict[str, Callable[[], Any]] = {}
    pairwise = create_model("universeg-v1", mode="pairwise").eval()
    pairwise.load_state_dict(model.state_dict())

    def no_grad(m):
        def f(*x):
            with torch.inference_mode():
                return m(*x)
        return f

    builders["pairwise"] = lambda: no_grad(pairwise)
    builders["split"] = lambda: no_grad(model)

    def torch_compiled():
        import torch._inductor.config as inductor_config

        # compile in this process, inside the timed build: no background workers whose kernels
        # swap in during the timed rounds
        inductor_config.compile_threads = 1
        compiled = torch.compile(model, dynamic=False)
        f = no_grad(compiled)
        for s in sizes:  # the compile happens here, per static S
            f(*example_inputs(1, s, (h, w)))
        return f

    builders["torch.compile"] = torch_compiled

    def onnx():
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sessions = {}
        for s in sizes:
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, example_inputs(1, s, (h, w)), buf, dynamo=False,
                                  input_names=["t", "si", "sl"], output_names=["y"], opset_version=17)
            sessions[s] = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

        def f(t, si, sl):
            y = sessions[si.shape[1]].run(None, {"t": t.numpy(), "si": si.numpy(), "sl": sl.numpy()})[0]
            return torch.from_numpy(y)
        return f

    builders["onnxruntime"] = onnx

    def tvm_level(level: str):
        def build():
            from universeg_plus.backends import compile as tvm_compile

            kw = dict(level=level, image_size=(h, w), cache_dir=args.cache_dir, tuning_dir=args.tuning_dir)
            if level != "O3":
                cm = tvm_compile(model, **kw)
                reload = tvm_compile(model, **kw)
                if not reload.from_cache:
                    raise RuntimeError(f"TVM {level}: the second compile did not load from the cache")
                paths[f"tvm-{level}"].extra["cache_load_s"] = reload.compile_seconds
                paths[f"tvm-{level}"].extra["built_from_cache"] = cm.from_cache
                return cm
            modules = {s: tvm_compile(model, support_size=s, **kw) for s in sizes}
            return lambda t, si, sl: modules[si.shape[1]](t, si, sl)
        return build

    for level in ("O0", "O1", "O2", "O3"):
        builders[f"tvm-{level}"] = tvm_level(level)

    paths: dict[str, SimpleNamespace] = {}
    for name in args.paths:
        log.info("building %s", name)
        path = paths[name] = SimpleNamespace(name=name, extra={}, fn=None, build_seconds=0.0)
        start = time.perf_counter()
        path.fn = builders[name]()
        path.build_seconds = time.perf_counter() - start
        log.info("built %s in %.1f s", name, path.build_seconds)
    return paths


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 64], help="support sizes S")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--paths", nargs="+", default=list(EAGER + TVM_LEVELS), choices=EAGER + TVM_LEVELS)
    p.add_argument("--rounds", type=int, default=5, help="timed interleaved rounds (after a warm-up)")
    p.add_argument("--slow-rounds", type=int, default=2, help="timed calls of paths slower than --slow-after")
    p.add_argument("--slow-after", type=float, default=15.0, help="seconds per call that make a path 'slow'")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tuning-dir", default=None, help="MetaSchedule database for O3 (default: the tune default)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_backends")
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)  # shared with the memory probes
    p.add_argument("--_memory", nargs=2, metavar=("PATH", "S"), help=argparse.SUPPRESS)
    return p


def _setup(args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    torch.manual_seed(0)
    model = create_model("universeg-v1").eval()
    inputs = {s: example_inputs(1, s, (args.image_size, args.image_size)) for s in args.sizes}
    return model, inputs


def _memory_probe(args: argparse.Namespace) -> None:
    """Child process: build one path for one S (TVM from the run's cache), time and measure one call."""
    name, s = args._memory[0], int(args._memory[1])
    args.paths, args.sizes = [name], [s]
    model, inputs = _setup(args)
    path = build_paths(args, model, [s])[name]
    sec, mib, _ = _timed(lambda: path.fn(*inputs[s]))
    print("MEMORY " + json.dumps({"seconds": sec, "peak_mib": mib}))


def _probe(args: argparse.Namespace, name: str, s: int) -> dict:
    cmd = [sys.executable, __file__, "--_memory", name, str(s), "--image-size", str(args.image_size),
           "--threads", str(args.threads), "--cache-dir", args.cache_dir]
    if args.tuning_dir:
        cmd += ["--tuning-dir", args.tuning_dir]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("MEMORY "))[7:])


def main() -> None:
    args = _parser().parse_args()
    if args._memory:
        _memory_probe(args)
        return
    args.cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench_tvm_")
    model, inputs = _setup(args)
    with torch.inference_mode():
        refs = {s: model(*inputs[s]) for s in args.sizes}
    paths = build_paths(args, model, args.sizes)

    times: dict[tuple[str, int], list[float]] = {(n, s): [] for n in paths for s in args.sizes}
    mem: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], float] = {}
    parity: dict[tuple[str, int], float] = {}
    slow: set[tuple[str, int]] = set()
    # one call in a fresh process per (path, S): peak memory and first-call time; then a
    # warm-up here for paths that are not slow (slow paths are timed from their first call)
    for s in args.sizes:
        for name, path in paths.items():
            probe = _probe(args, name, s)
            first[(name, s)], mem[(name, s)] = probe["seconds"], probe["peak_mib"]
            log.info("probe %s S=%d: first call %.3f s, peak +%.0f MiB", name, s, probe["seconds"], probe["peak_mib"])
            if probe["seconds"] > args.slow_after:
                slow.add((name, s))
                continue
            _, _, out = _timed(lambda: path.fn(*inputs[s]))
            parity[(name, s)] = float((out.float() - refs[s]).abs().max())
    for r in range(args.rounds):
        for s in args.sizes:
            for name, path in paths.items():
                key = (name, s)
                if key in slow and len(times[key]) >= args.slow_rounds:
                    continue
                sec, _, out = _timed(lambda: path.fn(*inputs[s]))
                if key not in parity:
                    parity[key] = float((out.float() - refs[s]).abs().max())
                times[key].append(sec)
                log.info("round %d %s S=%d: %.3f s", r, name, s, sec)

    rows = []
    for name, path in paths.items():
        row = {"path": name, "label": LABELS[name], "build_s": round(path.build_seconds, 2), **path.extra}
        for s in args.sizes:
            ts = times[(name, s)]
            row[f"S={s}"] = {
                "median_s": statistics.median(ts),
                "runs_s": ts,
                "slow_path": (name, s) in slow,
                "first_call_s": first[(name, s)],
                "peak_mem_mib": round(mem[(name, s)], 1),
                "max_abs_diff": parity[(name, s)],
            }
        rows.append(row)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        import tvm
        from tvm.target import codegen

        machine["tvm"] = tvm.__version__
        machine["llvm_cpu"] = str(codegen.llvm_get_system_cpu())
    except ImportError:
        pass
    try:
        import onnxruntime

        machine["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    cmd = "python benchmarks/bench_backends.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k not in ("out", "cache_dir", "_memory") and not (k == "tuning_dir" and v is None)
    )
    result = {"machine": machine, "command": cmd, "image_size": args.image_size, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(_markdown(result, args.sizes))
    print(_markdown(result, args.sizes))


def _markdown(result: dict, sizes: list[int]) -> str:
    m = result["machine"]
    lines = [
        f"Machine: {m.get('cpu_model')} (LLVM cpu {m.get('llvm_cpu', '?')}), {m['threads']} threads; torch {m['torch']}, "
        f"TVM {m.get('tvm', '-')}, onnxruntime {m.get('onnxruntime', '-')}. B=1, {result['image_size']}x{result['image_size']}.",
        f"Command: `{result['command']}`",
        "",
        "| path | " + " | ".join(f"S={s}" for s in sizes) + " | build | peak mem (S=" + str(sizes[-1]) + ") | max abs diff |",
        "|---|" + "---|" * len(sizes) + "---|---|---|",
    ]
    for row in result["rows"]:
        cells = []
        for s in sizes:
            c = row[f"S={s}"]
            note = f" ({len(c['runs_s'])} runs)" if c["slow_path"] else ""
            cells.append(f"{c['median_s']:.2f} s{note}")
        build = f"{row['build_s']:.1f} s"
        if "cache_load_s" in row:
            build += f" (cached: {row['cache_load_s']:.2f} s)"
        diff = max(row[f"S={s}"]["max_abs_diff"] for s in sizes)
        lines.append(
            f"| {row['label']} | " + " | ".join(cells)
            + f" | {build} | {row[f'S={sizes[-1]}']['peak_mem_mib']:.0f} MiB | {diff:.1e} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
