"""Merge per-dataset ``universeg-plus evaluate`` runs into one learning-curve page and plot.

    python scripts/merge_learning_curves.py runs/curves300 runs/curves_s28 --out docs/results --name learning-curves \\
        --command "universeg-plus evaluate ... --out runs/curves300/<dataset>"

Reads ``<run>/*/summary.csv`` and ``timings.csv`` of every run folder given (one folder per dataset, as one
``evaluate`` per dataset writes them; several run folders add support sizes, methods or datasets; a row a
later folder repeats, same task, method and S, is left out), and writes ``<name>.md`` (mean Dice and wall time per method and S, the
head-to-head counts against the U-Net, every task's own table) and ``<name>.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from universeg_plus.evaluation.curves import curves_markdown, plot_curves
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.io.tables import read_csv_rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="folders of per-dataset evaluate output folders")
    p.add_argument("--out", type=Path, default=Path("docs/results"))
    p.add_argument("--name", default="learning-curves")
    p.add_argument("--title", default="")
    p.add_argument("--command", default="", help="the evaluate command, for the page")
    p.add_argument("--note", default="", help="a paragraph on how and where it ran")
    args = p.parse_args()
    summary, timings, done = [], [], []
    seen: set[tuple[str, str, str]] = set()  # (task, method, S): a later run's repeat of a row is left out

    def fresh(rows: list[dict], keys: set[tuple[str, str, str]]) -> list[dict]:
        return [r for r in rows if (r["task"], r["method"], r["requested_support"]) not in keys]

    for run in args.runs:
        for folder in sorted(d for d in run.iterdir() if (d / "summary.csv").is_file()):
            rows = fresh(read_csv_rows(folder / "summary.csv"), seen)
            if (folder / "timings.csv").is_file():
                timings += fresh(read_csv_rows(folder / "timings.csv"), seen)
            summary += rows
            seen |= {(r["task"], r["method"], r["requested_support"]) for r in rows}
            done.append(folder.name)
    done = list(dict.fromkeys(done))
    if not summary:
        raise SystemExit(f"no <dataset>/summary.csv under {', '.join(map(str, args.runs))}")
    tasks = list(dict.fromkeys(r["task"] for r in summary))
    parts = [f"# {args.title or 'Learning curves: every method at each S'}", "",
             f"![learning curves]({args.name}.png)", ""]
    if args.note:
        parts += [args.note, ""]
    if args.command:
        parts += ["Command, once per dataset:", "", "```bash", args.command, "```", ""]
    parts += [f"{len(tasks)} label tasks of {len(done)} datasets: {', '.join(tasks)}.", "",
              f"## Mean over the {len(tasks)} tasks: Dice (mean wall time per task and S)", "",
              curves_markdown(summary, timings), "## Per task", ""]
    for t in tasks:
        parts += [f"### {t}", "", curves_markdown([r for r in summary if r["task"] == t],
                                                  [r for r in timings if r["task"] == t]).split("\n\nMean Dice")[0], ""]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(parts) + "\n")
    plot_curves(summary, timings, args.out / f"{args.name}.png", args.title)
    print(f"wrote {args.out / (args.name + '.md')} and .png ({len(tasks)} tasks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
