"""Wall time of support-set adaptation vs the per-task U-Net baseline, same support set, same machine.

    python benchmarks/bench_adapt_cost.py                          # universeg-small, S=16, 3 rounds
    python benchmarks/bench_adapt_cost.py --threads 1 --rounds 5 --steps 100 200 300

Each round trains the U-Net baseline (its default budget) and adapts the model with every listed
step count (default adaptation settings otherwise), in turn, on the same 16 synthetic 128x128 pairs;
the table shows medians over rounds and the ratio to the U-Net. Interleaving makes slow drifts of a
shared machine hit every method alike. This is what the default ``AdaptConfig.steps`` is chosen
from: the largest budget whose median time stays at or below the U-Net's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from universeg_plus import create_model
from universeg_plus.adapt import AdaptConfig, adapt_model
from universeg_plus.evaluation.baseline import BaselineConfig, train_baseline


def _support(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy images with a bright disc of radius ``size / 6``; the disc is the mask (timing only)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(size // 4, 3 * size // 4, (n, 2), generator=g)
    masks = ((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2 < (size // 6) ** 2).float()[:, None]
    images = (0.3 * torch.rand(n, 1, size, size, generator=g) + 0.6 * masks).clamp(0, 1)
    return images, masks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="universeg-small")
    ap.add_argument("--support-size", type=int, default=16)
    ap.add_argument("--steps", type=int, nargs="+", default=None, help="adaptation budgets (default: the default)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/bench_adapt_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, pretrained="auto").eval()
    size = model.config.input_size[0]
    images, masks = _support(args.support_size, size)
    steps = args.steps or [AdaptConfig().steps]
    times: dict[str, list[float]] = {"U-Net": [], **{f"adapt {s} steps": [] for s in steps}}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        train_baseline(images, masks, BaselineConfig(), seed=r)
        times["U-Net"].append(time.perf_counter() - t0)
        for s in steps:
            t0 = time.perf_counter()
            adapt_model(model, images, masks, steps=s, seed=r, progress=False)
            times[f"adapt {s} steps"].append(time.perf_counter() - t0)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmd = "python " + " ".join(sys.argv)
    cfg = AdaptConfig()
    lines = [
        f"Command: `{cmd}`  ",
        f"Machine: {platform.machine()}, {args.threads} thread(s), torch {torch.__version__}; model `{args.model}`, "
        f"S={args.support_size}, {size}x{size}; medians of {args.rounds} interleaved rounds.  ",
        f"U-Net: {BaselineConfig().steps} steps, batch {BaselineConfig().batch_size}. Adaptation: "
        f"{cfg.batch_size} episodes of {cfg.episode_support} support per step, crop {cfg.crop}, parts {cfg.parts}.",
        "",
        "| method | wall time (s) | ratio to the U-Net |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v:.1f} | {v / med['U-Net']:.2f} |" for k, v in med.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps({"command": cmd, "times": times, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
