"""What the forward pass's input checks cost, and how good the activation-memory estimate is.

    python benchmarks/bench_input_checks.py                  # universeg-v1, B=1, 128x128, S in {8, 16}
    python benchmarks/bench_input_checks.py --model universeg-small --sizes 8 32 --rounds 9
    python benchmarks/bench_input_checks.py --memory         # measured peak / estimated activation memory

Timing: one process, two networks with the same weights, one with the checks of
``UniverSegPlus.forward`` (shapes, device, dtype, memory estimate, one ``aminmax`` per input) and one
with them bypassed; every round runs both for every S in turn (interleaved), so drifts of a loaded
machine hit both alike. Prints medians, their ratio, and the median time of the checks alone.

Memory (``--memory``): for each case, a fresh subprocess measures the growth of its peak RSS over one
forward (CPU, Linux) and divides by :func:`universeg_plus.model.estimate_activation_bytes`'s input
(``itemsize * B * (S + 1) * sum_l width_l * H_l * W_l``): the measured factor, to set beside the
estimate's factor. Writes a markdown table and JSON next to the other results.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from universeg_plus import create_model
from universeg_plus.model import _ACTIVATION_FACTOR, estimate_activation_bytes

VARIANTS = ("checked", "unchecked")
MEMORY_CASES = [  # (model, mode, S, size, gradients)
    ("universeg-small", "split", 8, 128, False),
    ("universeg-small", "split", 8, 256, False),
    ("universeg-small", "split", 32, 128, False),
    ("universeg-small", "pairwise", 8, 256, False),
    ("universeg-small", "split", 8, 256, True),
    ("universeg-v1", "split", 8, 256, False),
]


def _inputs(s: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, 1, size, size, generator=g)
    si = torch.rand(1, s, 1, size, size, generator=g)
    return t, si, (torch.rand(1, s, 1, size, size, generator=g) > 0.5).float()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def measure_factor(name: str, mode: str, s: int, size: int, gradients: bool) -> float:
    """Peak RSS growth of one forward over ``itemsize * (S + 1) * sum_l width_l * H_l * W_l`` (fresh process)."""
    model = create_model(name, mode=mode)
    inputs = _inputs(s, size)
    unit = estimate_activation_bytes(model.config, 1, s, size, size, mode, gradients) / _ACTIVATION_FACTOR[
        (mode, gradients)
    ]
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    base = _status_kib("VmHWM")
    if gradients:
        model(*inputs).sum().backward()
    else:
        with torch.inference_mode():
            model(*inputs)
    return (_status_kib("VmHWM") - base) * 1024 / unit


def _memory_table(threads: int) -> tuple[list[str], list[dict]]:
    rows, lines = [], [
        "| model | form | S | size | gradients | measured factor | estimate's factor |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name, mode, s, size, grad in MEMORY_CASES:
        cmd = [sys.executable, __file__, "--_factor", name, mode, str(s), str(size), str(int(grad)),
               "--threads", str(threads)]
        factor = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-1])
        rows.append({"model": name, "mode": mode, "S": s, "size": size, "gradients": grad, "measured": factor,
                     "estimate": _ACTIVATION_FACTOR[(mode, grad)]})
        lines.append(f"| {name} | {mode} | {s} | {size} | {'yes' if grad else 'no'} | {factor:.2f} | "
                     f"{_ACTIVATION_FACTOR[(mode, grad)]:.1f} |")
    return lines, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="universeg-v1")
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16], help="support sizes S")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds (after one warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory", action="store_true", help="measure the activation-memory factor instead")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_input_checks")
    p.add_argument("--_factor", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args._factor:
        name, mode, s, size, grad = args._factor
        print(measure_factor(name, mode, int(s), int(size), grad == "1"))
        return
    machine = f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}"
    command = "python " + " ".join(sys.argv)
    if args.memory:
        lines, rows = _memory_table(args.threads)
        table = "\n".join([f"Peak RSS growth of one forward / activation unit (CPU; {machine}).", "", *lines, "",
                           f"Command: `{command}`"])
        print(table)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}_memory.md").write_text(table + "\n")
        Path(f"{args.out}_memory.json").write_text(json.dumps({"command": command, "machine": machine,
                                                               "rows": rows}, indent=2))
        return

    checked = create_model(args.model).eval()
    unchecked = create_model(args.model).eval()
    unchecked.load_state_dict(checked.state_dict())
    unchecked._check_inputs = lambda *inputs: inputs  # the same forward without its checks
    models = {"checked": checked, "unchecked": unchecked}
    times: dict[tuple[str, int], list[float]] = {(v, s): [] for v in VARIANTS for s in args.sizes}
    check_times: dict[int, list[float]] = {s: [] for s in args.sizes}
    with torch.inference_mode():
        for s in args.sizes:  # warm-up and parity
            inputs = _inputs(s, args.image_size)
            assert torch.equal(checked(*inputs), unchecked(*inputs))
        for r in range(args.rounds):
            for s in args.sizes:
                inputs = _inputs(s, args.image_size)
                order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
                for v in order:
                    t0 = time.perf_counter()
                    models[v](*inputs)
                    times[(v, s)].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                checked._check_inputs(*inputs)
                check_times[s].append(time.perf_counter() - t0)
    lines = [
        f"B=1, {args.image_size}x{args.image_size}, {args.model}, split form, CPU ({machine}); median of "
        f"{args.rounds} interleaved rounds.",
        "",
        "| S | with checks ms | without ms | ratio | checks alone ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for s in args.sizes:
        med = {v: statistics.median(times[(v, s)]) * 1000 for v in VARIANTS}
        alone = statistics.median(check_times[s]) * 1000
        rows.append({"S": s, "checked_ms": med["checked"], "unchecked_ms": med["unchecked"],
                     "ratio": med["checked"] / med["unchecked"], "checks_alone_ms": alone})
        lines.append(f"| {s} | {med['checked']:.1f} | {med['unchecked']:.1f} | "
                     f"{med['checked'] / med['unchecked']:.3f} | {alone:.3f} |")
    lines += ["", f"Command: `{command}`"]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.md").write_text(table + "\n")
    Path(f"{args.out}.json").write_text(json.dumps(
        {"command": command, "machine": machine, "rows": rows,
         "raw_seconds": {f"{v}@S={s}": t for (v, s), t in times.items()}}, indent=2))


if __name__ == "__main__":
    main()
