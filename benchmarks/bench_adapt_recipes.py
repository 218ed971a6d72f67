"""Adaptation recipes side by side: mean Dice on the held-out tasks and wall time, against the default.

    python benchmarks/bench_adapt_recipes.py --data-root ../shared/data/tasks --support-sizes 4 16 --targets 3 \\
        --recipe "half-steps:steps=150,lr=2e-3" --recipe "batch2:batch_size=2" --threads 1

Each recipe is a name and :class:`~universeg_plus.adapt.AdaptConfig` overrides (``key=value`` pairs,
comma-separated); the default ``AdaptConfig()`` always runs as ``default``. For every held-out task (the
datasets ``universeg-plus evaluate`` uses, read at their own size) and support size, every recipe adapts
the model to the same seeded support set and predicts the same targets through the Predictor path
(:func:`universeg_plus.evaluation.evaluate` with only the adaptation rows), so the Dice figures are those of
``evaluate --adapt`` with that recipe. The recipes run interleaved task by task, so slow drifts of a shared
machine hit every recipe alike; the wall time covers adapting and predicting the targets.

``--reuse-default RUNS`` reads the default recipe's rows from earlier ``universeg-plus evaluate --adapt
--threads 1`` runs (``RUNS/<dataset>/per_target.csv``, same protocol and seed) instead of adapting again:
at a fixed thread count adaptation is deterministic, so the Dice figures are the same; their wall times
come from those runs and no wall-time ratio is printed for them.

Results are cached per (task, S, recipe) in ``--cache`` (JSON lines), so a run can be resumed or split over
processes (``--tasks``) and merged by running once more without ``--tasks``. The table reports mean Dice and
mean wall time per recipe and S, the difference to ``default`` and its standard error over tasks, and the
wall-time ratio to ``default``.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from common import bench_parser, command, machine

from universeg_plus.adapt import AdaptConfig, adapt_config
from universeg_plus.data.tasks import DEFAULT_VAL_TASKS, load_task_root
from universeg_plus.evaluation import EvalSettings, evaluate, native_tasks
from universeg_plus.factory import load_model
from universeg_plus.io.atomic import atomic_write_text

log = logging.getLogger("bench_adapt_recipes")


def parse_recipe(text: str) -> tuple[str, dict[str, object]]:
    """``"name:key=value,key=value"`` -> ``(name, overrides)``; values parsed as JSON where they parse."""
    name, _, rest = text.partition(":")
    if not name or name == "default":
        raise ValueError(f"a recipe needs a name other than 'default' before ':', got {text!r}")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"recipe option must be key=value, got {item!r} in {text!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    adapt_config(**options)  # refuse unknown fields and bad values now, not an hour into the run
    return name, options


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_adapt_recipes", threads=1)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--tasks", nargs="+", default=None, help="datasets or tasks (default: every held-out dataset)")
    ap.add_argument("--support-sizes", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--recipe", action="append", default=[], help="name:key=value,... (AdaptConfig overrides)")
    ap.add_argument("--cache", default="runs/bench/adapt_recipes.jsonl")
    ap.add_argument("--reuse-default", type=Path, default=None,
                    help="folder of per-dataset evaluate runs whose universeg_adapt rows stand for 'default'")
    ap.add_argument("--report-only", action="store_true", help="write the table from the cache, run nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    recipes = {"default": {}} | dict(parse_recipe(r) for r in args.recipe)
    cache_path = Path(args.cache)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["task"], row["support_size"], row["recipe"])] = row

    if args.reuse_default is not None:
        for key, row in reused_default_rows(args.reuse_default, set(args.support_sizes)).items():
            done.setdefault(key, row)

    if not args.report_only:
        model = load_model(args.model, pretrained=True)
        size = tuple(model.config.input_size)
        datasets = sorted({t.split("/", 1)[0] for t in args.tasks}) if args.tasks else list(DEFAULT_VAL_TASKS)
        coll = load_task_root(args.data_root, size, include=datasets)
        chosen = coll.filter(include=list(args.tasks) if args.tasks else datasets)
        tasks = native_tasks(chosen, args.data_root)
        for task in tasks:
            for s in args.support_sizes:
                for name, options in recipes.items():
                    if (task.name, s, name) in done:
                        continue
                    settings = EvalSettings(support_sizes=(s,), num_targets=args.targets, ensemble=1,
                                            adapt=AdaptConfig(**options))
                    t0 = time.perf_counter()
                    result = evaluate(model, [task], settings, progress=False)
                    total = time.perf_counter() - t0
                    dice = [r["dice"] for r in result.records if r["method"] == "universeg_adapt"]
                    wall = sum(t["wall_s"] for t in result.timings if t["method"] == "universeg_adapt")
                    row = {"task": task.name, "support_size": s, "recipe": name, "options": options,
                           "dice": statistics.mean(dice), "per_target": dice, "wall_s": wall, "total_s": total}
                    done[(task.name, s, name)] = row
                    with cache_path.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    log.info("%s S=%d %s: dice %.4f, %.1f s", task.name, s, name, row["dice"], wall)

    lines = report(done, recipes, args)
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(Path(args.out + ".md"), text)
    atomic_write_text(Path(args.out + ".json"), json.dumps(list(done.values()), indent=1))
    return 0


def reused_default_rows(runs: Path, sizes: set[int]) -> dict[tuple[str, int, str], dict]:
    """``(task, S, "default") -> row`` from the ``universeg_adapt`` rows of per-dataset evaluate runs."""
    from universeg_plus.io.tables import read_csv_rows

    out: dict[tuple[str, int, str], dict] = {}
    for folder in sorted(d for d in runs.iterdir() if (d / "per_target.csv").is_file()):
        dice: dict[tuple[str, int], list[float]] = {}
        for r in read_csv_rows(folder / "per_target.csv"):
            if r["method"] == "universeg_adapt" and int(r["requested_support"]) in sizes:
                dice.setdefault((r["task"], int(r["requested_support"])), []).append(float(r["dice"]))
        wall = {(r["task"], int(r["requested_support"])): float(r["wall_s"])
                for r in read_csv_rows(folder / "timings.csv") if r["method"] == "universeg_adapt"}
        for (task, s), v in dice.items():
            out[(task, s, "default")] = {"task": task, "support_size": s, "recipe": "default", "options": {},
                                         "dice": statistics.mean(v), "per_target": v,
                                         "wall_s": wall.get((task, s), math.nan), "reused_from": str(folder)}
    return out


def report(done: dict, recipes: dict[str, dict], args) -> list[str]:
    """Mean Dice and wall time per recipe and S over the tasks every recipe finished, and per task."""
    lines = [f"Command: `{command()}`  ", f"Machine: {machine(args.threads)}; model `{args.model}`, "
             f"{args.targets} targets per task, the protocol of `universeg-plus evaluate --adapt`.", ""]
    names = [n for n in recipes if any(k[2] == n for k in done)]  # the recipes asked for, cached rows of others stay
    for s in sorted({k[1] for k in done}):
        tasks = sorted({k[0] for k in done if k[1] == s and all((k[0], s, n) in done for n in names)})
        if not tasks or "default" not in names:
            continue
        lines += [f"## S = {s} ({len(tasks)} tasks)", "",
                  "| recipe | options | mean Dice | minus default (s.e.) | ahead / behind default | "
                  "wall time per task (s) | ratio to default |", "|---|---|---|---|---|---|---|"]
        base = [done[(t, s, "default")] for t in tasks]
        base_wall = statistics.mean(r["wall_s"] for r in base)
        reused = any("reused_from" in r for r in base)
        if reused:
            lines += ["The default recipe's rows are read from earlier `evaluate` runs (`--reuse-default`): its "
                      "wall time is from those runs, so no ratio is given.", ""]
        for n in names:
            rows = [done[(t, s, n)] for t in tasks]
            diff = [r["dice"] - b["dice"] for r, b in zip(rows, base)]
            se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            wall = statistics.mean(r["wall_s"] for r in rows)
            opts = ", ".join(f"{k}={v}" for k, v in rows[0]["options"].items()) or "AdaptConfig()"
            ahead = sum(d > 0.005 for d in diff)
            behind = sum(d < -0.005 for d in diff)
            lines.append(f"| {n} | {opts} | {statistics.mean(r['dice'] for r in rows):.3f} | "
                         f"{statistics.mean(diff):+.3f} ({se:.3f}) | {ahead} / {behind} | {wall:.1f} | "
                         f"{'—' if reused else f'{wall / base_wall:.2f}'} |")
        lines += ["", "| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for t in tasks:
            lines.append(f"| {t} | " + " | ".join(f"{done[(t, s, n)]['dice']:.3f}" for n in names) + " |")
        lines.append("")
    return lines


if __name__ == "__main__":
    sys.exit(main())
