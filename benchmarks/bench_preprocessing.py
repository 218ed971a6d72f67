"""What the old train/inference preprocessing mismatch cost: shipped weights through three input paths.

    python benchmarks/bench_preprocessing.py --data-root ../shared/data/tasks     # S=16, 10 targets/task
    python benchmarks/bench_preprocessing.py --data-root DIR --model universeg-small --support-size 16 --threads 2

Until commit ef4e06b the network met two different inputs:

(a) the old *user* path (``support.py`` at dbbad34, what ``Predictor``/``segment`` did): min-max
    scale each image, then antialiased bilinear resize; masks resized per label by area averaging
    and majority;
(b) the old *training* path (``data/tasks.py`` at dbbad34, what ``train`` and ``evaluate`` did):
    antialiased bilinear resize, then min-max, then 8-bit quantisation; masks antialiased bilinear
    with a >= 0.5 cut;
(c) the one path now (:mod:`universeg_plus.io.inputs`, used everywhere).

The two old functions of each path are copied below verbatim (renamed, marked OLD CODE) for this
measurement only. Every path sees the same held-out tasks, targets and support sets (the evaluation
protocol at one S, no ensembling); the model's 128x128 probabilities are upsampled to each target's
own size as the Predictor does and scored there against the native mask. Path (b) is also scored at
128x128 against its own resized masks, which is what ``evaluate`` reported before. Path (c) is
checked against ``universeg_plus.evaluation.evaluate`` (which goes through SupportSet/Predictor).
Writes a markdown table and JSON next to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import bench_parser, command, machine
from universeg_plus import create_model
from universeg_plus.adapt import in_context_probabilities
from universeg_plus.data.tasks import DEFAULT_VAL_TASKS, load_task_root
from universeg_plus.evaluation import EvalSettings, evaluate, make_episodes, native_tasks, to_original_size
from universeg_plus.io.inputs import as_image_2d, prepare_image, prepare_mask
from universeg_plus.metrics import dice


# ----------------------------------------------------------------------------------------------
# OLD CODE, for this measurement only: support.py at dbbad34 (the user path before ef4e06b)
def old_user_preprocess_image(a: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """dbbad34 support.preprocess_image after its checks: min-max, then resize. ``(1, h, w)``."""
    t = torch.from_numpy(np.ascontiguousarray(a.astype(np.float32)))
    lo, hi = t.min(), t.max()
    t = (t - lo) / (hi - lo) if hi > lo else torch.zeros_like(t)
    if tuple(t.shape) != size:
        t = F.interpolate(t[None, None], size=size, mode="bilinear", align_corners=False, antialias=True)[0, 0]
    return t.clamp_(0.0, 1.0)[None]


def old_user_prepare_mask(labels: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """dbbad34 support.prepare_mask, mode "area": area-average each label, keep the majority."""
    t = torch.from_numpy(np.ascontiguousarray(labels)).long()
    if tuple(t.shape) == size:
        return t.float()[None]
    values = torch.unique(t)
    if len(values) == 1:
        return torch.full((1, *size), float(values[0]))
    onehot = (t[None] == values[:, None, None]).float()[None]  # (1, L, H, W)
    frac = F.interpolate(onehot, size=size, mode="area")[0]
    # ties go to the lowest label (background first): strict majority needed to flip
    return values[frac.argmax(dim=0)].float()[None]


# OLD CODE, for this measurement only: data/tasks.py at dbbad34 (the training path before ef4e06b)
def old_train_resize_image(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """dbbad34 data.tasks._resize_image: ``(H, W)`` float -> ``(1, h, w)``: resized, then min-max normalised."""
    if not img.amax() > img.amin():  # constant image (checked before resizing adds round-off)
        return torch.zeros(1, *size)
    x = F.interpolate(img[None, None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    lo, hi = x.amin(), x.amax()
    x = ((x - lo) / (hi - lo).clamp_min(1e-12)).clamp_(0, 1)
    # Quantised to 8 bits (the sources are 8-bit): keeps task files compact and lossless.
    return (x * 255).round_() / 255


def old_train_resize_masks(label_map: torch.Tensor, groups: Sequence[tuple[int, ...]], size: tuple[int, int]):
    """dbbad34 data.tasks._resize_masks: ``(H, W)`` label map -> ``(G, h, w)`` {0, 1} (bilinear, >= 0.5)."""
    onehot = torch.stack([torch.isin(label_map, torch.tensor(g)) for g in groups]).float()
    soft = F.interpolate(onehot[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return (soft >= 0.5).float()


# ----------------------------------------------------------------------------------------------
Prep = tuple[Callable[[np.ndarray], torch.Tensor], Callable[[np.ndarray], torch.Tensor]]


def _paths(size: tuple[int, int]) -> dict[str, Prep]:
    """Path name -> (image ``(H, W)`` array -> ``(1, h, w)``, bool mask ``(H, W)`` -> ``(1, h, w)`` {0, 1})."""
    grey = lambda a: as_image_2d(a, "image").astype(np.float32)  # noqa: E731  (the grey rule is unchanged)
    return {
        "old user path (a)": (
            lambda a: old_user_preprocess_image(grey(a), size),
            lambda m: old_user_prepare_mask(m.astype(np.int64), size),
        ),
        "old training path (b)": (
            lambda a: old_train_resize_image(torch.from_numpy(grey(a)), size),
            lambda m: old_train_resize_masks(torch.from_numpy(m.astype(np.int64)), [(1,)], size),
        ),
        "one path now (c)": (
            lambda a: prepare_image(a, size),
            lambda m: prepare_mask(m.astype(np.int64), size),
        ),
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    if args.weights:
        from universeg_plus import from_pretrained

        model = from_pretrained(args.weights).eval()
    else:
        model = create_model(args.model, pretrained=True).eval()
    size = tuple(model.config.input_size)
    coll = load_task_root(args.data_root, size, include=list(DEFAULT_VAL_TASKS))
    tasks = native_tasks(coll, args.data_root)
    episodes = make_episodes(tasks, (args.support_size,), args.targets, 0.5, 1, None, args.seed)
    by_name = {t.name: t for t in tasks}
    paths = _paths(size)
    rows: dict[str, dict[str, float]] = {p: {} for p in [*paths, "old training path (b), scored at 128x128"]}
    for ep in episodes:
        task = by_name[ep.task]
        refs = [task.masks[t] for t in ep.targets]
        for name, (prep_image, prep_mask) in paths.items():
            si = torch.stack([prep_image(task.images[i]) for i in ep.supports[0]])
            sm = torch.stack([prep_mask(task.masks[i]) for i in ep.supports[0]])
            x = torch.stack([prep_image(task.images[t]) for t in ep.targets])
            probs = in_context_probabilities(model, x, si, sm)
            native = to_original_size(probs, [r.shape for r in refs])
            rows[name][ep.task] = float(np.mean([float(dice(p > 0.5, r)) for p, r in zip(native, refs)]))
            if name.startswith("old training"):
                small = torch.stack([prep_mask(r) for r in refs])[:, 0] > 0.5
                rows[f"{name}, scored at 128x128"][ep.task] = float(dice(probs[:, 0] > 0.5, small).mean())
        print(ep.task, {k: round(v[ep.task], 4) for k, v in rows.items()}, flush=True)
    # cross-check: path (c) is what evaluate (SupportSet + Predictor) scores
    settings = EvalSettings(support_sizes=(args.support_size,), num_targets=args.targets, ensemble=1, seed=args.seed)
    result = evaluate(model, tasks, settings, progress=False)
    ev: dict[str, list[float]] = {}
    for r in result.records:
        ev.setdefault(r["task"], []).append(r["dice"])
    gap = max(abs(np.mean(v) - rows["one path now (c)"][t]) for t, v in ev.items())
    return {"rows": rows, "evaluate_max_abs_diff": gap}


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_preprocessing", threads=2)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--weights", default=None, help="a weights folder instead of --model's shipped weights")
    ap.add_argument("--support-size", type=int, default=16)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    out = run(args)
    rows = out["rows"]
    tasks = list(next(iter(rows.values())))
    lines = [
        f"Command: `{command()}`  ",
        f"Machine: {machine(torch.get_num_threads())}; "
        f"{time.time() - t0:.0f} s. Model `{args.model}` (shipped weights), S={args.support_size}, "
        f"up to {args.targets} targets per task; Dice of `p > 0.5` per target, mean over targets.",
        "",
        "| task | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(f"{rows[p][t]:.3f}" for p in rows) + " |")
    lines.append(f"| **mean over {len(tasks)} tasks** | " + " | ".join(
        f"**{np.mean(list(rows[p].values())):.3f}**" for p in rows) + " |")
    lines += ["", f"`evaluate` (SupportSet + Predictor) vs path (c), largest per-task difference: "
              f"{out['evaluate_max_abs_diff']:.2e}"]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps({"command": command(), **out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
