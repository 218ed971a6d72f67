"""Simulated annotation of the held-out datasets: what each proposal saves the annotator, per item.

    python benchmarks/bench_annotate.py                                  # 6 tasks, all methods
    python benchmarks/bench_annotate.py --tasks all --methods in-context # 11 label tasks, in-context only

For each label task, the first ``--items + 1`` images (file order) are annotated in order through
:class:`universeg_plus.annotate.AnnotationSession`, the true masks playing the annotator
(:func:`universeg_plus.annotate.simulate`). The first image has no support: it is drawn (cost 1.0),
so every task starts from one labelled image; the next ``--items`` are measured. Per item: the
proposal's Dice against the truth, its edit cost (pixels where proposal and truth differ over the
truth's foreground, capped at 1.0: the annotator clears a proposal worse than nothing) and the time
to the proposal. Methods, side by side on the same items:

- ``in-context``: the model from the items accepted so far, no training (what the session shows at once);
- ``adapted``: the same, after ``--adapt-steps`` of test-time adaptation on the accepted items
  (what the session's background refresh shows when ready);
- ``unet``: a per-task U-Net (``universeg_plus.evaluation.baseline``) trained on the accepted items,
  warm-started from the previous item's network with ``--unet-steps`` more steps after each accept,
  at ``--unet-size`` px (its probabilities resized to the items' size);
- ``none``: no model (every item drawn: cost 1.0).

Pairs come from ``universeg_plus.data.tasks.load_task_folder`` at 128x128 (the model's input size).
Writes ``<out>.json`` (every item), ``<out>.md`` (summary) and the plot ``--plot``.
``--replot A.json B.json`` draws the methods of earlier runs in one plot (the first run's rows win
for a method both hold) without running anything.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import bench_parser, machine
from universeg_plus.annotate import AnnotationSession, edit_cost, label_dice, simulate, summarize
from universeg_plus.annotate.simulate import SimulatedItem
from universeg_plus.data.tasks import DEFAULT_VAL_TASKS, load_task_folder
from universeg_plus.evaluation.baseline import BaselineConfig, predict_baseline, train_baseline
from universeg_plus.factory import create_model
from universeg_plus.io.inputs import Named
from universeg_plus.io.tables import markdown_table

METHODS = ("in-context", "adapted", "unet", "none")


def _tasks(root: Path, which: str, n_items: int) -> list:
    tasks = []
    for ds in DEFAULT_VAL_TASKS:
        found = [t for t in load_task_folder(root / ds, size=(128, 128)) if len(t) >= 2]
        tasks += found if which == "all" else found[:1]
    return [t for t in tasks if len(t) >= 2]


def _arrays(task, n: int) -> tuple[list[Named], list[np.ndarray]]:
    k = min(n, len(task))
    images = [Named(task.images[i, 0].numpy(), task.stems[i]) for i in range(k)]
    masks = [task.masks[i, 0].numpy().astype(np.int64) for i in range(k)]
    return images, masks


def _session_run(model, images, masks, adapt_steps: int) -> list[SimulatedItem]:
    with tempfile.TemporaryDirectory() as tmp, AnnotationSession(
        images, Path(tmp) / "session", model, adapt_steps=adapt_steps, background=True
    ) as session:
        return simulate(session, masks)


def _unet_run(images, masks, steps: int, size: int, seed: int = 0) -> list[SimulatedItem]:
    x = torch.stack([torch.from_numpy(np.asarray(im.value, np.float32)) for im in images])[:, None]
    y = torch.stack([torch.from_numpy(m.astype(np.float32)) for m in masks])[:, None]
    hw = x.shape[-2:]
    xs = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    ys = (F.interpolate(y, size=(size, size), mode="area") >= 0.5).float()
    out, net = [], None
    cfg = BaselineConfig(steps=steps)
    for i, truth in enumerate(masks):
        t0 = time.perf_counter()
        if i == 0:
            proposal, seconds = np.zeros_like(truth), 0.0
        else:
            net = train_baseline(xs[:i], ys[:i], cfg, seed=seed + i, init=net)
            prob = predict_baseline(net, xs[i : i + 1])
            prob = F.interpolate(prob, size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()
            proposal, seconds = (prob >= 0.5).astype(np.int64), time.perf_counter() - t0
        fg = int(truth.sum())
        changed = int(np.count_nonzero(proposal != truth))
        out.append(SimulatedItem(
            step=i + 1, name=images[i].name, support=i, dice=label_dice(proposal, truth),
            edit_cost=edit_cost(proposal, truth), edit_pixels=min(changed, fg), foreground=fg,
            source="unet" if i else "none", propose_seconds=seconds, fast_dice=label_dice(proposal, truth),
        ))
    return out


def _none_run(images, masks) -> list[SimulatedItem]:
    return [SimulatedItem(i + 1, im.name, i, 0.0, 1.0, int(m.sum()), int(m.sum()), "none", 0.0, 0.0)
            for i, (im, m) in enumerate(zip(images, masks))]


def _plot(results: dict, n_items: int, path: Path) -> None:
    from universeg_plus.io.figures import pyplot, save_figure

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, per_task in results.items():
        costs = np.full((len(per_task), n_items), np.nan)
        cum = np.full_like(costs, np.nan)
        for r, rows in enumerate(per_task.values()):
            rows = [x for x in rows if x["support"] > 0][:n_items]
            costs[r, : len(rows)] = [x["edit_cost"] for x in rows]
            edits = np.cumsum([x["edit_pixels"] for x in rows])
            fgs = np.cumsum([x["foreground"] for x in rows])
            cum[r, : len(rows)] = edits / np.maximum(fgs, 1)
        xs = np.arange(1, n_items + 1)
        a.plot(xs, np.nanmean(costs, axis=0), marker="o", ms=3, label=method)
        b.plot(xs, np.nanmean(cum, axis=0), marker="o", ms=3, label=method)
    a.set(xlabel="items accepted before this one", ylabel="edit cost of the proposal (1 = draw)", ylim=(0, 1.05),
          title="edit cost per item")
    b.set(xlabel="items annotated after the first", ylabel="edited / drawn pixels so far", ylim=(0, 1.05),
          title="cumulative cost of annotating")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    a.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_annotate", threads=1)
    ap.add_argument("--data", default="../shared/data/tasks")
    ap.add_argument("--tasks", choices=("first", "all"), default="first",
                    help="first label task of each held-out dataset (6), or all 11")
    ap.add_argument("--items", type=int, default=16, help="measured items after the first labelled one")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--adapt-steps", type=int, default=20)
    ap.add_argument("--unet-steps", type=int, default=50)
    ap.add_argument("--unet-size", type=int, default=64)
    ap.add_argument("--plot", default="docs/images/annotate_edit_cost.png")
    ap.add_argument("--replot", nargs="+", metavar="JSON", help="plot the results of earlier runs together")
    args = ap.parse_args()
    if args.replot:
        merged: dict[str, dict[str, list[dict]]] = {}
        for path in args.replot:
            for method, per_task in json.loads(Path(path).read_text())["items"].items():
                merged.setdefault(method, per_task)
        order = [m for m in METHODS if m in merged]
        _plot({m: merged[m] for m in order}, args.items, Path(args.plot))
        print(f"wrote {args.plot} ({', '.join(order)})")
        return 0
    torch.set_num_threads(args.threads)
    command = "python " + " ".join(sys.argv)
    model = create_model(args.model, pretrained=True).eval()
    tasks = _tasks(Path(args.data), args.tasks, args.items + 1)
    results: dict[str, dict[str, list[dict]]] = {m: {} for m in args.methods}
    seconds: dict[str, float] = {m: 0.0 for m in args.methods}
    cpu0 = time.process_time()
    for task in tasks:
        images, masks = _arrays(task, args.items + 1)
        for method in args.methods:  # interleaved per task: a busy spell hits every method alike
            t0 = time.perf_counter()
            if method == "in-context":
                rows = _session_run(model, images, masks, 0)
            elif method == "adapted":
                rows = _session_run(model, images, masks, args.adapt_steps)
            elif method == "unet":
                rows = _unet_run(images, masks, args.unet_steps, args.unet_size)
            else:
                rows = _none_run(images, masks)
            seconds[method] += time.perf_counter() - t0
            results[method][task.name] = [r.as_dict() for r in rows]
            s = summarize(rows)
            print(f"{task.name:45s} {method:10s} total {s['total_cost']:.3f}  8th {s['cost_at']:.3f}  "
                  f"dice {s['mean_dice']:.3f}  max proposal {s['max_propose_seconds']:.2f} s", flush=True)
    cpu = time.process_time() - cpu0

    header = ["method", "total edit cost", "8th proposal cost", "mean Dice", "median / max s to proposal",
              "wall s per task"]
    table = []
    summary = {}
    for method, per_task in results.items():
        sums = [summarize([SimulatedItem(**r) for r in rows]) for rows in per_task.values()]
        s = {k: float(np.nanmean([x[k] for x in sums])) for k in sums[0]}
        s["max_propose_seconds"] = float(max(x["max_propose_seconds"] for x in sums))
        summary[method] = s
        table.append([method, f"{s['total_cost']:.3f}", f"{s['cost_at']:.3f}", f"{s['mean_dice']:.3f}",
                      f"{s['median_propose_seconds']:.2f} / {s['max_propose_seconds']:.2f}",
                      f"{seconds[method] / len(tasks):.1f}"])
    per_task_rows = []
    for name in results[args.methods[0]]:
        row = [name]
        for method in args.methods:
            s = summarize([SimulatedItem(**r) for r in results[method][name]])
            row.append(f"{s['total_cost']:.2f} / {s['cost_at']:.2f}")
        per_task_rows.append(row)
    where = machine(torch.get_num_threads())
    lines = [
        "# Simulated annotation (bench_annotate.py)", "", f"Command: `{command}`", "",
        f"Machine: {where}; {cpu / 60:.1f} CPU-minutes. Shared machine: times are noisy.", "",
        f"{len(tasks)} label tasks, 1 labelled image then {args.items} items each (fewer where a task has fewer "
        "images). Total edit cost: edited pixels over the true foreground pixels of all measured items "
        "(1.0 = drawing everything); 8th proposal: the edit cost of the proposal made from 8 accepted items.", "",
        *markdown_table(header, table), "",
        "Per task: total edit cost / 8th proposal cost", "",
        *markdown_table(["task", *args.methods], per_task_rows), "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(
        {"command": command, "machine": machine, "cpu_seconds": cpu, "args": vars(args), "summary": summary,
         "items": results}, indent=1))
    if args.plot:
        _plot(results, args.items, Path(args.plot))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
