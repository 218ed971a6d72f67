"""Colour to grey: luma vs the support set's Fisher projection vs the leave-one-out choice, on a synthetic
colour task (the team's task PNGs are stored as luma, so no real RGB task is available here).

    python benchmarks/bench_colour.py --threads 1

The task: 128x128 RGB images; the structure (a random ellipse) differs from the background in hue
only, at equal luma (reddish background, greenish structure); brighter and darker background-hued
blobs are luma distractors; per-pixel noise. Targets are segmented in-context with ``--support``
examples, each projection applied identically to support and target; Dice per target, mean.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from bench_adapt_cost import write_outputs  # same folder: the table + JSON writer
from common import bench_parser, command, machine
from universeg_plus import create_model
from universeg_plus.adapt import in_context_probabilities
from universeg_plus.colour import LUMA, ColourProjection, choose_projection, fit_projection
from universeg_plus.metrics import dice
from universeg_plus.support import SupportSet

BG, FG = np.array([0.62, 0.40, 0.40]), np.array([0.30, 0.55, 0.45])  # luma 0.460 and 0.464


def _ellipse(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    cy, cx = rng.uniform(0.25 * n, 0.75 * n, 2)
    ry, rx = rng.uniform(lo * n, hi * n, 2)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def make_task(count: int, n: int = 128, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for _ in range(count):
        img = np.tile(BG, (n, n, 1))
        for _ in range(3):  # luma distractors, background hue
            img[_ellipse(rng, n, 0.08, 0.2)] *= rng.choice([0.7, 1.3])
        m = _ellipse(rng, n, 0.1, 0.25)
        img[m] = FG * rng.uniform(0.95, 1.05)
        img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
        images.append((img * 255).astype(np.uint8))
        masks.append(m.astype(np.uint8))
    return images, masks


def score(model, proj: ColourProjection, sup_i, sup_m, tgt_i, tgt_m, size) -> float:
    sup = SupportSet.from_arrays([proj(x) for x in sup_i], sup_m, size)
    tgt = SupportSet.from_arrays([proj(x) for x in tgt_i], tgt_m, size)
    p = in_context_probabilities(model, tgt.images, sup.images, sup.masks) > 0.5
    return float(dice(p[:, 0], tgt.masks[:, 0] > 0.5).mean())


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_colour", threads=1)
    ap.add_argument("--support", type=int, default=8)
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3, help="independent tasks (seeds)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, pretrained="auto").eval()
    size = tuple(model.config.input_size)
    rows = []
    for seed in range(args.seeds):
        images, masks = make_task(args.support + args.targets, seed=seed)
        si, sm, ti, tm = images[: args.support], masks[: args.support], images[args.support :], masks[args.support :]
        t0 = time.perf_counter()
        chosen, loo = choose_projection(model, si, sm, size)
        t_choose = time.perf_counter() - t0
        row = {
            "seed": seed,
            "luma": score(model, ColourProjection("luma", LUMA), si, sm, ti, tm, size),
            "fisher": score(model, fit_projection(si, sm), si, sm, ti, tm, size),
            "chosen": score(model, chosen, si, sm, ti, tm, size),
            "chosen_name": chosen.name,
            "choose_s": t_choose,
            "loo": loo,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("luma", "fisher", "chosen", "choose_s")}
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine(args.threads)}; model `{args.model}`; "
        f"synthetic colour task (structure differs in hue at equal luma, luma distractors), S={args.support}, "
        f"{args.targets} targets, {args.seeds} seeds. In-context Dice (no adaptation).",
        "",
        "| seed | luma | Fisher projection | leave-one-out choice (which) | choice time (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['seed']} | {r['luma']:.3f} | {r['fisher']:.3f} | {r['chosen']:.3f} ({r['chosen_name']}) | "
              f"{r['choose_s']:.1f} |" for r in rows]
    lines.append(f"| **mean** | **{mean['luma']:.3f}** | **{mean['fisher']:.3f}** | **{mean['chosen']:.3f}** | "
                 f"{mean['choose_s']:.1f} |")
    write_outputs(args.out, lines, {"command": command(), "rows": rows, "mean": mean})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
