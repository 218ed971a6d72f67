"""Pairwise (official) vs split (default) forward of universeg-v1: time and peak memory.

    python benchmarks/bench_model.py                       # B=1, 128x128, S in {8, 16, 64}, 5 rounds
    python benchmarks/bench_model.py --sizes 8 16 --rounds 7 --threads 2 --device cpu

Timings are medians over interleaved rounds (every round runs every path and S once, in turn), so
slow drifts of the machine hit all paths alike. Peak memory is measured in a fresh subprocess per
(path, S): the growth of the process's peak RSS over one forward (CPU), or
``torch.cuda.max_memory_allocated`` (CUDA). Writes a markdown table and JSON.
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

PATHS = ("pairwise", "split")


def _inputs(s: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, 1, size, size, generator=g)
    si = torch.rand(1, s, 1, size, size, generator=g)
    sl = (torch.rand(1, s, 1, size, size, generator=g) > 0.5).float()
    return t.to(device), si.to(device), sl.to(device)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def peak_memory_mb(mode: str, s: int, size: int, device: str) -> float:
    """Peak memory of one forward in this (fresh) process, in MiB."""
    model = create_model("universeg-v1", mode=mode).to(device).eval()
    inputs = _inputs(s, size, device)
    with torch.inference_mode():
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            model(*inputs)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kib("VmHWM")
        model(*inputs)
        return (_status_kib("VmHWM") - base) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 64], help="support sizes S")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (after one warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_model")
    p.add_argument("--_memory", nargs=2, metavar=("MODE", "S"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    if args._memory:
        print(peak_memory_mb(args._memory[0], int(args._memory[1]), args.image_size, args.device))
        return

    models = {m: create_model("universeg-v1", mode=m).to(args.device).eval() for m in PATHS}
    models["split"].load_state_dict(models["pairwise"].state_dict())
    times: dict[tuple[str, int], list[float]] = {(m, s): [] for m in PATHS for s in args.sizes}
    parity: dict[int, float] = {}
    with torch.inference_mode():
        for s in args.sizes:  # warm-up + parity
            inputs = _inputs(s, args.image_size, args.device)
            out = {m: models[m](*inputs) for m in PATHS}
            parity[s] = (out["split"] - out["pairwise"]).abs().max().item()
        for _ in range(args.rounds):
            for s in args.sizes:
                inputs = _inputs(s, args.image_size, args.device)
                for m in PATHS:
                    _sync(args.device)
                    t0 = time.perf_counter()
                    models[m](*inputs)
                    _sync(args.device)
                    times[(m, s)].append(time.perf_counter() - t0)

    memory = {}
    for m in PATHS:
        for s in args.sizes:
            cmd = [sys.executable, __file__, "--_memory", m, str(s), "--image-size", str(args.image_size),
                   "--threads", str(args.threads), "--device", args.device]
            memory[(m, s)] = float(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-1])

    machine = f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    command = "python " + " ".join(sys.argv)
    rows = []
    lines = [
        f"B=1, {args.image_size}x{args.image_size}, universeg-v1, device {args.device} ({machine}); "
        f"median of {args.rounds} interleaved runs.",
        "",
        "| S | pairwise ms | split ms | speed-up | pairwise peak MiB | split peak MiB | max abs delta logit |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in args.sizes:
        med = {m: statistics.median(times[(m, s)]) * 1000 for m in PATHS}
        row = {
            "S": s,
            "pairwise_ms": med["pairwise"],
            "split_ms": med["split"],
            "speedup": med["pairwise"] / med["split"],
            "pairwise_peak_mib": memory[("pairwise", s)],
            "split_peak_mib": memory[("split", s)],
            "max_abs_delta_logit": parity[s],
        }
        rows.append(row)
        lines.append(
            f"| {s} | {row['pairwise_ms']:.0f} | {row['split_ms']:.0f} | {row['speedup']:.2f}x | "
            f"{row['pairwise_peak_mib']:.0f} | {row['split_peak_mib']:.0f} | {row['max_abs_delta_logit']:.1e} |"
        )
    lines += ["", f"Command: `{command}`"]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
    Path(f"{args.out}{suffix}.md").write_text(table + "\n")
    Path(f"{args.out}{suffix}.json").write_text(
        json.dumps({"command": command, "machine": machine, "device": args.device, "rows": rows,
                    "raw_seconds": {f"{m}@S={s}": v for (m, s), v in times.items()}}, indent=2)
    )


if __name__ == "__main__":
    main()
