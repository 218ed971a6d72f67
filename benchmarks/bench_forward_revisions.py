"""The network's forward at another git revision vs now, side by side in one process.

    python benchmarks/bench_forward_revisions.py --rev ef4e06b            # S in {8, 16, 64}, 5 rounds
    python benchmarks/bench_forward_revisions.py --rev HEAD~3 --sizes 16 --rounds 7 --threads 1

The package at ``--rev`` is extracted with ``git archive`` into a temporary folder under another
name, both networks are built from the same config with the same weights, and their forwards run
in alternating order (round r runs "then" first when r is even, "now" first when odd) on the same
inputs, so slow drifts of a shared machine hit both alike. Reports the median times, their ratio
and the largest logit difference. Used for issue 14 (input checks must not slow the forward).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from universeg_plus import get_config
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.model import UniverSegPlus

ROOT = Path(__file__).resolve().parents[1]


def load_revision(rev: str, folder: Path) -> type:
    """``UniverSegPlus`` of the package at ``rev``, importable as ``universeg_plus_at_rev``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "universeg_plus"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    shutil.move(str(folder / "universeg_plus"), str(folder / "universeg_plus_at_rev"))
    sys.path.insert(0, str(folder))
    return importlib.import_module("universeg_plus_at_rev.model").UniverSegPlus


def revision_parser(doc: str, model: str, threads: int, out: str) -> argparse.ArgumentParser:
    """The options every then-vs-now benchmark takes: --rev, --model, --rounds, --threads, --out."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--rev", required=True, help="git revision to compare with the working tree")
    p.add_argument("--model", default=model)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--out", default=out)
    return p


def main(argv: list[str] | None = None) -> None:
    p = revision_parser(__doc__, "universeg-v1", threads=2, out="benchmarks/results/bench_forward_revisions")
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 64])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = get_config(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        then_cls = load_revision(args.rev, Path(tmp))
        now = UniverSegPlus(cfg).eval()
        then = then_cls.from_config(cfg.model_dump()).eval()
        then.load_state_dict(now.state_dict())
        g = torch.Generator().manual_seed(0)
        rows = []
        for s in args.sizes:
            x = (torch.rand(1, 1, 128, 128, generator=g), torch.rand(1, s, 1, 128, 128, generator=g),
                 (torch.rand(1, s, 1, 128, 128, generator=g) > 0.5).float())
            times: dict[str, list[float]] = {"then": [], "now": []}
            with torch.inference_mode():
                delta = (then(*x) - now(*x)).abs().max().item()  # also the warm-up
                for r in range(args.rounds):
                    order = (("then", then), ("now", now)) if r % 2 == 0 else (("now", now), ("then", then))
                    for name, m in order:
                        t0 = time.perf_counter()
                        m(*x)
                        times[name].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) * 1000 for k, v in times.items()}
            rows.append({"S": s, "then_ms": med["then"], "now_ms": med["now"], "ratio": med["now"] / med["then"],
                         "max_abs_delta_logit": delta})
    head = (f"{args.model}, B=1, 128x128, {platform.machine()}, {args.threads} thread(s), torch {torch.__version__}; "
            f"median of {args.rounds} alternating rounds; then = `{args.rev}`, now = working tree.")
    lines = [head, "", "| S | then ms | now ms | now / then | max abs delta logit |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['S']} | {r['then_ms']:.0f} | {r['now_ms']:.0f} | {r['ratio']:.3f} | {r['max_abs_delta_logit']:.1e} |"
              for r in rows]
    write_report(lines, rows, args, argv)


def write_report(lines: list[str], rows: list[dict], args: argparse.Namespace, argv: list[str] | None) -> None:
    """Print the table with its command and write it to ``args.out`` (.md, and the rows as .json)."""
    lines = [*lines, "", "Command: `python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]) + "`", ""]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".md"), text)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"rev": args.rev, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
