"""``Predictor.predict`` at another git revision vs now, side by side in one process (issue 22).

    python benchmarks/bench_predict_revisions.py --rev f12f631 --threads 1 --rounds 5

The package at ``--rev`` is extracted as in ``bench_forward_revisions.py``; both Predictors wrap
networks with the same weights and get the same support arrays and targets, and run in alternating
order (round r runs "then" first when r is even). Measures the whole road of one call (input checks,
option checks, resizing, the ensemble / chunk / flip loop, back to size), for a plain call and an
ensembled, flipped one. Reports medians, their ratio and the largest probability difference.
"""

from __future__ import annotations

import importlib
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_forward_revisions import load_revision, revision_parser, write_report  # noqa: E402

from universeg_plus import get_config  # noqa: E402
from universeg_plus.model import UniverSegPlus  # noqa: E402
from universeg_plus.predictor import Predictor  # noqa: E402
from universeg_plus.support import SupportSet  # noqa: E402

CASES = {"plain": {}, "ensemble 4 x S/2 + flips": {"ensemble": 4, "flips": True}}


def main(argv: list[str] | None = None) -> None:
    p = revision_parser(__doc__, "universeg-small", threads=1, out="benchmarks/results/bench_predict_revisions")
    p.add_argument("--support", type=int, default=16, help="support examples")
    p.add_argument("--targets", type=int, default=2, help="targets per call (a batch)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = get_config(args.model)
    rng = np.random.default_rng(0)
    images = [(rng.random((160, 200)) * 255).astype(np.uint8) for _ in range(args.support)]
    masks = [(rng.random((160, 200)) > 0.7).astype(np.uint8) for _ in range(args.support)]
    targets = (rng.random((args.targets, 1, 240, 180)) * 255).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        then_cls = load_revision(args.rev, Path(tmp))
        old = importlib.import_module("universeg_plus_at_rev.predictor")
        old_support = importlib.import_module("universeg_plus_at_rev.support")
        torch.manual_seed(0)
        now_net = UniverSegPlus(cfg).eval()
        then_net = then_cls.from_config(cfg.model_dump()).eval()
        then_net.load_state_dict(now_net.state_dict())
        size = tuple(cfg.input_size)
        now = Predictor(now_net).set_support(SupportSet.from_arrays(images, masks, size=size))
        then = old.Predictor(then_net).set_support(old_support.SupportSet.from_arrays(images, masks, size=size))
        rows = []
        for case, kwargs in CASES.items():
            times: dict[str, list[float]] = {"then": [], "now": []}
            delta = float(np.abs(then.predict(list(targets[:, 0]), **kwargs).probabilities
                                 - now.predict(targets, **kwargs).probabilities).max())  # also the warm-up
            for r in range(args.rounds):
                order = (("then", then, list(targets[:, 0])), ("now", now, targets))
                for name, pred, x in (order if r % 2 == 0 else order[::-1]):
                    t0 = time.perf_counter()
                    pred.predict(x, **kwargs)
                    times[name].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) * 1000 for k, v in times.items()}
            rows.append({"case": case, "then_ms": med["then"], "now_ms": med["now"], "ratio": med["now"] / med["then"],
                         "max_abs_delta_probability": delta})
    head = (f"{args.model} (random weights), S={args.support}, {args.targets} targets of 240x180, "
            f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}; median of {args.rounds} "
            f"alternating rounds; then = `{args.rev}`, now = working tree.")
    lines = [head, "", "| case | then ms | now ms | now / then | max abs delta probability |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['then_ms']:.0f} | {r['now_ms']:.0f} | {r['ratio']:.3f} | "
              f"{r['max_abs_delta_probability']:.1e} |" for r in rows]
    write_report(lines, rows, args, argv)


if __name__ == "__main__":
    main()
