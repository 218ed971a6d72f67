"""Colour in an annotation session: the simulated annotator (true masks accepted) labels a synthetic
colour dataset with ``AnnotationSession(..., colour=...)``: luma, Fisher and the leave-one-out choice,
refitted on the accepted items after every accept (the team's task PNGs are stored as luma, so no real
RGB task is available here).

    python benchmarks/bench_colour_annotate.py --threads 1

The dataset is ``bench_colour.make_task`` (128x128 RGB; the structure differs from the background in
hue only, at equal luma; luma distractors). Per session: the mean Dice of the proposals made from at
least one accepted item, the total edit cost (edited pixels over all true foreground pixels of those
items; 1.0 = drawing them all) and the wall time of the whole session (proposals, and the refit of
the projection on every accept).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_adapt_cost import write_outputs  # same folder: the table + JSON writer
from bench_colour import COLOURS, make_task
from common import bench_parser, command, machine
from universeg_plus.annotate import AnnotationSession, simulate, summarize
from universeg_plus.predictor import Predictor


def run_session(model: torch.nn.Module, folder: Path, masks: list[np.ndarray], colour: str) -> dict:
    """``{dice, cost, seconds, last}`` of one simulated session in a fresh session folder."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with AnnotationSession(folder, Path(tmp) / "session", model, colour=colour) as s:
            rows = simulate(s, masks)
            last = s.colour_projection.name
        seconds = time.perf_counter() - t0
    summary = summarize(rows)
    return {"dice": summary["mean_dice"], "cost": summary["total_cost"], "seconds": seconds, "last": last}


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_colour_annotate", threads=1)
    ap.add_argument("--items", type=int, default=12, help="items per dataset")
    ap.add_argument("--seeds", type=int, default=2, help="independent datasets (seeds)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = Predictor(args.model, device="cpu", calibration=None).model
    rows = []
    for seed in range(args.seeds):
        images, masks = make_task(args.items, seed=100 + seed)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for k, im in enumerate(images):
                Image.fromarray(im).save(folder / f"item{k:02d}.png")
            row: dict = {"seed": seed}
            for colour in COLOURS:
                row[colour] = run_session(model, folder, masks, colour)
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {c: {k: float(np.mean([r[c][k] for r in rows])) for k in ("dice", "cost", "seconds")} for c in COLOURS}
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine(args.threads)} (shared, noisy); model `{args.model}`; synthetic colour dataset "
        f"(structure differs in hue at equal luma), {args.items} items, {args.seeds} seeds. Simulated annotator: "
        "every true mask accepted; figures over the items proposed from at least one accepted item.",
        "",
        "| seed | colour | mean Dice of the proposals | total edit cost (1.0 = draw all) | session time (s) | "
        "projection at the end |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines += [f"| {r['seed']} | {c} | {r[c]['dice']:.3f} | {r[c]['cost']:.3f} | {r[c]['seconds']:.1f} | "
                  f"{r[c]['last']} |" for c in COLOURS]
    lines += [f"| **mean** | {c} | **{mean[c]['dice']:.3f}** | **{mean[c]['cost']:.3f}** | {mean[c]['seconds']:.1f} | |"
              for c in COLOURS]
    write_outputs(args.out, lines, {"command": command(), "rows": rows, "mean": mean})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
