"""Wall time of support-set adaptation vs the per-task U-Net baseline, same support set, same machine,
on an idle machine and beside a competing CPU-bound process.

    python benchmarks/bench_adapt_cost.py                                    # idle only, default budgets
    python benchmarks/bench_adapt_cost.py --threads 2 --rounds 3 --steps 100 200 300
    python benchmarks/bench_adapt_cost.py --threads 2 --rounds 2 --steps 50 --unet-steps 50 \\
        --load idle busy --policy fixed auto                                 # the busy-machine check
    python benchmarks/bench_adapt_cost.py --threads 1 --rounds 3 --recipe "batch2:batch_size=2"   # a recipe

``--recipe name:key=value,...`` adds an adaptation with those :class:`~universeg_plus.adapt.AdaptConfig`
overrides (the format of ``bench_adapt_recipes.py``, which measures the same recipes' Dice on the
held-out tasks).

Each round trains the U-Net baseline and adapts the model with every listed step count, on the same
16 synthetic 128x128 pairs, under each load condition in turn (``busy``: ``--competitors`` processes
spinning ``while True: pass`` beside it, started for the condition and stopped after it; each also
stops itself after ``--competitor-timeout`` seconds), under each thread policy:

- ``fixed``: every step at ``--threads`` threads (what the library did before the governor);
- ``auto``: the library's default, :class:`universeg_plus.cpu_threads.ThreadGovernor` choosing up to
  ``--threads`` threads by timing the steps.

The table shows medians over rounds and the ratio to the U-Net (fixed policy, same load).
Interleaving makes slow drifts of a shared machine hit every method alike. The idle U-Net ratio is
what the default ``AdaptConfig.steps`` is chosen from: the largest budget at or below the U-Net's time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from bench_adapt_recipes import parse_recipe

from universeg_plus import create_model
from universeg_plus.adapt import AdaptConfig, adapt_model
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.supervised import BaselineConfig, train_baseline


def _support(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy images with a bright disc of radius ``size / 6``; the disc is the mask (timing only)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.randint(size // 4, 3 * size // 4, (n, 2), generator=g)
    masks = ((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2 < (size // 6) ** 2).float()[:, None]
    images = (0.3 * torch.rand(n, 1, size, size, generator=g) + 0.6 * masks).clamp(0, 1)
    return images, masks


@contextlib.contextmanager
def competitors(n: int, timeout_s: float) -> Iterator[None]:
    """``n`` processes spinning one core each for the ``with`` block (each ends itself after ``timeout_s``)."""
    code = f"import time\nend = time.monotonic() + {timeout_s}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        time.sleep(0.5)  # let them reach the scheduler
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="universeg-small")
    ap.add_argument("--support-size", type=int, default=16)
    ap.add_argument("--steps", type=int, nargs="+", default=None, help="adaptation budgets (default: the default)")
    ap.add_argument("--unet-steps", type=int, default=BaselineConfig().steps)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--load", nargs="+", choices=["idle", "busy"], default=["idle"])
    ap.add_argument("--policy", nargs="+", choices=["fixed", "auto"], default=["fixed"])
    ap.add_argument("--competitors", type=int, default=1, help="spinning processes under --load busy")
    ap.add_argument("--competitor-timeout", type=float, default=900.0, help="each competitor ends itself after this")
    ap.add_argument("--recipe", action="append", default=[], help="name:key=value,... (AdaptConfig overrides)")
    ap.add_argument("--out", default="benchmarks/results/bench_adapt_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, pretrained="auto").eval()
    size = model.config.input_size[0]
    images, masks = _support(args.support_size, size)
    steps = args.steps or [AdaptConfig().steps]
    recipes = dict(parse_recipe(r) for r in args.recipe)

    def runs(policy: str) -> dict[str, object]:
        threads = {"threads": args.threads} if policy == "fixed" else {}
        unet = BaselineConfig(steps=args.unet_steps, **threads)
        out = {"U-Net": lambda r: train_baseline(images, masks, unet, seed=r)}
        for s in steps:
            out[f"adapt {s} steps"] = (lambda r, s=s: adapt_model(model, images, masks, steps=s, seed=r,
                                                                   progress=False, **threads))
        for name, options in recipes.items():
            out[f"adapt {name}"] = (lambda r, o=options: adapt_model(model, images, masks, seed=r, progress=False,
                                                                      **{**o, **threads}))
        return out

    times: dict[str, list[float]] = {}
    for r in range(args.rounds):
        for load in args.load:
            cm = competitors(args.competitors, args.competitor_timeout) if load == "busy" else contextlib.nullcontext()
            with cm:
                for policy in args.policy:
                    for name, fn in runs(policy).items():
                        t0 = time.perf_counter()
                        fn(r)
                        times.setdefault(f"{name}|{policy}|{load}", []).append(time.perf_counter() - t0)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    cmd = "python " + " ".join(sys.argv)
    cfg = AdaptConfig()
    lines = [
        f"Command: `{cmd}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, up to {args.threads} torch thread(s), torch "
        f"{torch.__version__}; model `{args.model}`, S={args.support_size}, {size}x{size}; medians of {args.rounds} "
        f"interleaved rounds; busy = {args.competitors} competing `while True: pass` process(es).  ",
        f"U-Net: {args.unet_steps} steps, batch {BaselineConfig().batch_size}. Adaptation: "
        f"{cfg.batch_size} episodes of {cfg.episode_support} support per step, crop {cfg.crop}, parts {cfg.parts}. "
        f"Policy fixed: every step at {args.threads} thread(s); auto: the library default (ThreadGovernor).",
        "",
        "| method | threads | load | wall time (s) | ratio to the U-Net (fixed, same load) | ratio to idle |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in med.items():
        name, policy, load = key.split("|")
        unet = med.get(f"U-Net|fixed|{load}") or med.get(f"U-Net|{policy}|{load}")
        idle = med.get(f"{name}|{policy}|idle")
        lines.append(f"| {name} | {policy} | {load} | {v:.1f} | {v / unet:.2f} | "
                     f"{f'{v / idle:.2f}' if idle else '-'} |")
    write_outputs(args.out, lines, {"command": cmd, "times": times, "median": med})
    return 0


def write_outputs(out: str, lines: list[str], data: dict) -> None:
    """Print the table and write it to ``out + ".md"``, ``data`` to ``out + ".json"`` (atomically)."""
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(Path(out + ".md"), text)
    atomic_write_text(Path(out + ".json"), json.dumps(data, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
