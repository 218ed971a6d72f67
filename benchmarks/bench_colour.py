"""Colour to grey through the user's road: ``Predictor.set_support(images, masks, colour=...)`` with
luma, the support set's Fisher projection and the leave-one-out choice, on a synthetic colour task (the
team's task PNGs are stored as luma, so no real RGB task is available here).

    python benchmarks/bench_colour.py --threads 1

The task: 128x128 RGB images; the structure (a random ellipse) differs from the background in hue
only, at equal luma (reddish background, greenish structure); brighter and darker background-hued
blobs are luma distractors; per-pixel noise. ``--targets`` images are segmented in-context from
``--support`` examples by one Predictor, the projection fitted on the support set and applied to the
targets by the Predictor itself; Dice per target at its own size, mean; wall time of
``set_support`` (the fit, and for ``auto`` the leave-one-out choice) plus ``predict_many``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from bench_adapt_cost import write_outputs  # same folder: the table + JSON writer
from common import bench_parser, command, machine
from universeg_plus.metrics import dice
from universeg_plus.predictor import Predictor

COLOURS = ("luma", "fisher", "auto")
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


def run_colour(predictor: Predictor, colour: str, sup_i, sup_m, tgt_i, tgt_m) -> tuple[float, float, str, dict]:
    """``(mean Dice, seconds, projection used, leave-one-out scores)`` of one ``colour=`` on one task."""
    t0 = time.perf_counter()
    predictor.set_support(sup_i, sup_m, colour=colour)
    preds = predictor.predict_many(tgt_i)
    seconds = time.perf_counter() - t0
    d = float(np.mean([dice(p.mask > 0, m > 0) for p, m in zip(preds, tgt_m)]))
    return d, seconds, preds[0].colour, preds[0].colour_scores


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_colour", threads=1)
    ap.add_argument("--support", type=int, default=8)
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3, help="independent tasks (seeds)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor(args.model, device="cpu", calibration=None)
    rows = []
    for seed in range(args.seeds):
        images, masks = make_task(args.support + args.targets, seed=seed)
        si, sm, ti, tm = images[: args.support], masks[: args.support], images[args.support :], masks[args.support :]
        row: dict = {"seed": seed}
        for colour in COLOURS:
            d, seconds, used, loo = run_colour(predictor, colour, si, sm, ti, tm)
            row[colour], row[f"{colour}_s"], row[f"{colour}_used"] = d, seconds, used
            if loo:
                row["loo"] = loo
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = [k for c in COLOURS for k in (c, f"{c}_s")]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine(args.threads)}; model `{args.model}`; "
        f"synthetic colour task (structure differs in hue at equal luma, luma distractors), S={args.support}, "
        f"{args.targets} targets, {args.seeds} seeds. In-context Dice (no adaptation) through "
        "`Predictor.set_support(images, masks, colour=...)` + `predict_many`; time = both.",
        "",
        "| seed | luma | Fisher | auto: leave-one-out choice (which) | time luma / Fisher / auto (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['seed']} | {r['luma']:.3f} | {r['fisher']:.3f} | {r['auto']:.3f} ({r['auto_used']}) | "
              f"{r['luma_s']:.1f} / {r['fisher_s']:.1f} / {r['auto_s']:.1f} |" for r in rows]
    lines.append(f"| **mean** | **{mean['luma']:.3f}** | **{mean['fisher']:.3f}** | **{mean['auto']:.3f}** | "
                 f"{mean['luma_s']:.1f} / {mean['fisher_s']:.1f} / {mean['auto_s']:.1f} |")
    write_outputs(args.out, lines, {"command": command(), "rows": rows, "mean": mean})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
