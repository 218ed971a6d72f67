"""Sampled masks and uncertainty on held-out tasks, with a calibration fitted on the validation tasks.

    python benchmarks/bench_uncertainty.py --data-root ../shared/data/tasks --targets 4 --threads 2 \\
        --write-calibration weights/universeg-small --out docs/results

1. Validation datasets (acdc_cardiac_mri, hc18_fetal_head_us, glas_gland_he, ms_lesion_flair_mri):
   single and K-sample predictions of the protocol's targets at each S
   (:func:`universeg_plus.evaluation.uncertainty.evaluate_uncertainty`, the Predictor's
   ``samples=K``), raw probabilities kept.
2. A Platt map (and, for comparison, a temperature) fitted on them, for single predictions and for
   the mean of K samples, minimising the ECE over the relevant pixels; the Platt map is written
   to ``--write-calibration``/calibration.json (what the Predictor then applies by default).
3. Held-out datasets (``DEFAULT_VAL_TASKS``): the same predictions, scored raw and calibrated, with
   the probability that the mask is wrong (the default map) and the entropy as the uncertainty,
   against the issue's targets; the last table is what ``Predictor.predict(samples=K)`` reports
   (its probabilities calibrated on each support set by leave-one-out).

Predictions are cached in ``--cache`` (delete it to recompute). Writes
``uncertainty-<model>.md`` and ``uncertainty-<model>.csv`` into ``--out``.
"""

from __future__ import annotations

import argparse
import pickle
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from universeg_plus import create_model
from universeg_plus.data.tasks import DEFAULT_VAL_TASKS, load_task_root
from universeg_plus.evaluation.native import native_tasks
from universeg_plus.evaluation.uncertainty import (
    IMAGE_FIELDS,
    ROW_FIELDS,
    evaluate_uncertainty,
    image_rows,
    markdown_uncertainty,
    target_checks,
    uncertainty_rows,
)
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.io.tables import write_csv
from universeg_plus.uncertainty import ModelCalibration, fit_calibration

VALIDATION = ("acdc_cardiac_mri", "hc18_fetal_head_us", "glas_gland_he", "ms_lesion_flair_mri")


def predictions(model, root, datasets, args, cache: Path, calibration=None):
    if cache.is_file():
        print(f"using cached predictions {cache}")
        images = pickle.loads(cache.read_bytes())
        for im in images:  # caches written before the field existed: the smallest requested S that fits
            if not getattr(im, "requested_support", 0):
                im.requested_support = min(s for s in args.support_sizes if s >= im.support_size)
        return images
    tasks = native_tasks(load_task_root(root, tuple(model.config.input_size), include=list(datasets)), root)
    t0 = time.time()
    images = evaluate_uncertainty(
        model, tasks, args.support_sizes, args.samples, args.targets, seed=args.seed, calibration=calibration
    )
    print(f"{len(images)} images of {len(tasks)} tasks in {time.time() - t0:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(images))
    return images


def fit(images, samples: int, kind: str) -> tuple[ModelCalibration, dict]:
    truth = np.concatenate([im.truth.ravel() for im in images])
    c1, i1 = fit_calibration(np.concatenate([im.single.ravel() for im in images]), truth, kind)
    ck, ik = fit_calibration(np.concatenate([im.mean.ravel() for im in images]), truth, kind)
    info = {"single": i1, "samples": ik}
    return ModelCalibration(c1, ck, {"samples": samples}), info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default="../shared/data/tasks")
    p.add_argument("--model", default="universeg-small")
    p.add_argument("--support-sizes", nargs="+", type=int, default=[4, 16])
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--targets", type=int, default=4, help="targets per task (the protocol's cap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="runs/bench/uncertainty")
    p.add_argument("--write-calibration", metavar="DIR", help="write the fitted temperature to DIR/calibration.json")
    p.add_argument("--out", default="docs/results")
    p.add_argument("--images-csv", action="store_true", help="also write the held-out per-image Dice rows")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "benchmarks/bench_uncertainty.py", *sys.argv[1:]])
    model = create_model(args.model, pretrained=True).eval()
    tag = f"S{'-'.join(map(str, args.support_sizes))}-K{args.samples}-T{args.targets}-seed{args.seed}"
    cache = Path(args.cache)
    # validation: raw probabilities for the fit (the masks' levels do not enter it)
    val = predictions(model, args.data_root, VALIDATION, args, cache / f"validation-{tag}.pkl")

    fits = {kind: fit(val, args.samples, kind) for kind in ("temperature", "platt")}
    platt, info = fits["platt"]
    stored = ModelCalibration(
        platt.single,
        platt.samples,
        {
            "method": "Platt (p' = sigmoid(scale * logit(p) + shift)), minimising ECE over relevant pixels",
            "fitted_on": list(VALIDATION),
            "support_sizes": args.support_sizes,
            "samples": args.samples,
            "targets_per_task": args.targets,
            "images": len(val),
            "validation_ece_relevant": {m: {k: round(v, 4) for k, v in i.items()} for m, i in info.items()},
            "note": "the shipped weights were trained on these validation datasets too (all non-held-out data)",
            "command": command,
        },
    )
    if args.write_calibration:
        print(f"wrote {stored.save(args.write_calibration)}")
    held = predictions(model, args.data_root, DEFAULT_VAL_TASKS, args, cache / f"heldout-{tag}.pkl", stored)

    sections, all_rows = [], []
    variants = [  # (title, calibration of both rows, uncertainty, sampled row as the Predictor reported it)
        ("raw probabilities, entropy (the uncertainty before this change)", None, "entropy", False),
        ("Platt (stored), entropy", stored, "entropy", False),
        ("Platt (stored), probability the mask is wrong", stored, "error", False),
        ("temperature (not stored), probability the mask is wrong", fits["temperature"][0], "error", False),
        ("what the Predictor reports: single with the stored Platt map; K samples calibrated on the "
         "support set (leave-one-out), probability the mask is wrong", stored, "error", True),
    ]
    for title, cal, kind, support in variants:
        rows = uncertainty_rows(held, args.samples, cal, kind, support=support)
        for r in rows:
            r["variant"] = title
        all_rows += rows
        sections.append(f"### {title}\n\n" + markdown_uncertainty(rows, target_checks(rows), args.samples))
    cal_lines = [
        f"- {name}: single scale {c.single.scale:.3f} shift {c.single.shift:+.3f}; K={args.samples} mean scale "
        f"{c.samples.scale:.3f} shift {c.samples.shift:+.3f}; validation relevant-pixel ECE single "
        f"{i['single']['ece_before']:.3f} -> {i['single']['ece_after']:.3f}, mean of K "
        f"{i['samples']['ece_before']:.3f} -> {i['samples']['ece_after']:.3f}"
        for name, (c, i) in fits.items()
    ]
    tasks = sorted({im.task for im in held})
    md = "\n".join(
        [
            f"# Sampled masks and uncertainty: {args.model}, held-out tasks",
            "",
            f"Command: `{command}`",
            f"Machine: {platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), CPU shared with "
            "other jobs (times are noisy).",
            f"Held-out: {len(tasks)} tasks, {len(held) // len(args.support_sizes)} targets per S (at most {args.targets} "
            f"per task); validation (calibration fit): {len(val) // len(args.support_sizes)} targets per S.",
            "",
            "Calibrations fitted on the validation datasets:",
            "",
            *cal_lines,
            "",
            *sections,
        ]
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"uncertainty-{args.model}.md", md + "\n")
    write_csv(all_rows, ["variant", *ROW_FIELDS], out / f"uncertainty-{args.model}.csv")
    if args.images_csv:
        write_csv(image_rows(held), IMAGE_FIELDS, out / f"uncertainty-{args.model}-per-image.csv")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
