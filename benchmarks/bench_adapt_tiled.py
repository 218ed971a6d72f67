"""Adaptation on native-scale windows vs on the model-size support set, each copy predicted whole and tiled.

For each task and S, the episode ``universeg-plus evaluate`` draws (same seed: same support set and
targets), this script adapts copies of the model: one as ``Predictor.adapt(inferer=Resize())``
(today's adaptation: the support set resized to the model size, 64x64 crops, 300 steps), one as
``Predictor.adapt(inferer=Tiles())`` (windows at native scale, 64x64 crops, 300 steps), one on whole
native-scale windows (``crop=None``, 100 steps: about the same wall time), and scores each (and
the un-adapted model) with three inferers: ``Resize()``, ``Tiles()`` and ``Tiles(fusion="mean")``.
Mean Dice over the targets at native size; adaptation wall time beside it. It separates the two
parts of "adapt on windows, predict tiled": which copy, and which inferer.

    python benchmarks/bench_adapt_tiled.py --tasks drishti_optic_disc_cup/optic_disc_rim \
        kvasir_polyp_endo/polyp --support-sizes 4 --targets 3 --threads 1
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from common import bench_parser, command, machine

from universeg_plus import metrics
from universeg_plus.data.tasks import load_task_root
from universeg_plus.evaluation.native import native_tasks
from universeg_plus.evaluation.protocol import make_episodes, task_seed
from universeg_plus.factory import load_model
from universeg_plus.inferers import Resize, Tiles
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.predictor import Predictor

INFERERS = {"whole (Resize)": Resize(), "tiled": Tiles(), "tiled + whole, mean": Tiles(fusion="mean")}
#: copy -> (inferer adapt() draws its episodes as, AdaptConfig options); ``None``: the model as shipped
COPIES = {
    "no adaptation": (None, {}),
    "adapted on the resized set": (Resize(), {}),
    "adapted on native windows": (Tiles(), {}),
    "adapted on native windows, whole 128 px windows, 100 steps": (Tiles(), {"crop": None, "steps": 100}),
}


def main() -> None:
    ap = bench_parser(__doc__, "benchmarks/results/bench_adapt_tiled", threads=1)
    ap.add_argument("--data-root", default="../shared/data/tasks")
    ap.add_argument("--tasks", nargs="+", default=["drishti_optic_disc_cup/optic_disc_rim", "kvasir_polyp_endo/polyp"])
    ap.add_argument("--support-sizes", nargs="+", type=int, default=[4])
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, pretrained=True)
    size = tuple(model.config.input_size)
    coll = load_task_root(args.data_root, size, include=sorted({t.split("/")[0] for t in args.tasks}))
    tasks = native_tasks(coll.filter(include=args.tasks), args.data_root)
    rows = []
    for ep in make_episodes(tasks, args.support_sizes, args.targets, 0.5, 1, 16, args.seed):
        task = next(t for t in tasks if t.name == ep.task)
        seed = task_seed(args.seed, ep.task, ep.support_size) % (2**31)  # evaluate's adaptation seed
        idx = ep.supports[0]
        predictor = Predictor(model, calibration=None).set_support(
            [task.images[i] for i in idx], [task.masks[i].astype(np.uint8) for i in idx]
        )
        targets, refs = [task.images[t] for t in ep.targets], [task.masks[t] for t in ep.targets]
        for copy_name, (how, options) in COPIES.items():
            t0 = time.perf_counter()
            if how is not None:
                predictor.adapt(seed=seed, progress=False, inferer=how, **options)
            adapt_s = time.perf_counter() - t0
            for view, inferer in INFERERS.items():
                preds = predictor.predict_many(targets, inferer=inferer)
                dice = float(np.mean([metrics.dice(p.probabilities > 0.5, r) for p, r in zip(preds, refs)]))
                rows.append({"task": ep.task, "S": ep.support_size, "copy": copy_name, "inferer": view,
                             "dice": dice, "adapt_s": adapt_s})
                print(f"{ep.task} S={ep.support_size} {copy_name}, {view}: Dice {dice:.3f} "
                      f"(adapt {adapt_s:.0f} s)", flush=True)
            predictor.reset()
    lines = [
        "# Adaptation on native windows vs on the resized support set, predicted whole and tiled", "",
        f"Command: `{command()}`  ",
        f"Machine: {machine(args.threads)}; shared with other jobs (wall times noisy).", "",
        "Mean Dice over the targets at native size; the episode (support set, targets, adaptation seed) is the one "
        "`universeg-plus evaluate` draws; default adaptation budget (300 steps, 64x64 crops) unless the row "
        "says so.", "",
        "| task | S | copy | " + " | ".join(INFERERS) + " | adapt s |",
        "|---|---|---|" + "---|" * (len(INFERERS) + 1),
    ]
    for key in dict.fromkeys((r["task"], r["S"], r["copy"]) for r in rows):
        cells = {r["inferer"]: r for r in rows if (r["task"], r["S"], r["copy"]) == key}
        first = next(iter(cells.values()))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(f"{cells[v]['dice']:.3f}" for v in INFERERS)
                     + f" | {first['adapt_s']:.0f} |")
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    atomic_write_text(out.with_suffix(".json"), json.dumps({"command": command(), "rows": rows}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
