"""Tiled (native-resolution) inference vs the ordinary 128x128 path vs per-task U-Nets, scored at native size.

    python benchmarks/bench_tiling.py --data-root ../shared/data/tasks            # the table of docs/tiling.md
    python benchmarks/bench_tiling.py --tasks isbi2012_em_membranes --max-targets 3 --scales 1.0 0.75

For every task, the targets and the S-example support set are those of ``universeg-plus evaluate``
(:func:`universeg_plus.evaluation.protocol.make_episodes` on the task loaded at the model's input
size, so the split is the same), but every image and mask is read again at its native size and
every method is scored there (Dice of probability > 0.5 against the native mask). Methods:

* ``global``: the ordinary path (whole image at 128x128, probabilities upsampled to native size);
* ``tiled@s``: the Predictor with :class:`universeg_plus.inferers.Tiles` at scale ``s``;
* ``mean@s`` / ``max@s``: the global and tiled maps fused by :func:`universeg_plus.windows.fuse`
  (its time is the sum of both);
* ``auto``: the view :func:`universeg_plus.evaluation.views.choose_view` picks among all of the above by
  leave-one-out Dice on the support set (``--n-val`` held-out examples); its time includes the choice;
* ``unet128``: the per-task U-Net of ``evaluation/baseline.py`` trained on the 128x128 support set,
  probabilities upsampled to native size;
* ``unet@s``: the same U-Net and budget trained on the support windows at scale ``s`` (every
  window of a 1/2-overlap grid, 128x128) and applied to the whole (zero-padded) image at scale ``s``.

Wall time per task and method covers preparing the support, training (U-Nets) and predicting all
targets. Writes ``<out>.json`` (per-target records) and ``<out>.md`` (per-task table).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from universeg_plus import create_model
from universeg_plus.data.tasks import load_task_folder
from universeg_plus.evaluation.baseline import BaselineConfig, predict_baseline, train_baseline
from universeg_plus.evaluation.holdout import read_training_info, training_datasets
from universeg_plus.evaluation.protocol import make_episodes, task_seed
from universeg_plus.io.atomic import atomic_write_text
from universeg_plus.io.images import list_image_files, read_image
from universeg_plus.io.inputs import as_image_2d, as_label_map, resize_indicators, standardize_image
from universeg_plus.metrics import dice
from universeg_plus.evaluation.views import choose_view
from universeg_plus.inferers import Resize, Tiles
from universeg_plus.predictor import Predictor
from universeg_plus.windows import fuse, scaled_size, window_grid

log = logging.getLogger("bench_tiling")

#: The finest structures of ../shared/data/tasks (nuclei, membranes, small lesions, thin vessels' regions).
DEFAULT_TASKS = (
    "dsb2018_nuclei_fluo/nucleus",
    "isbi2012_em_membranes/cell_membrane_boundary",
    "drosophila_vnc_em/membrane",
    "drosophila_vnc_em/synapse",
    "monusac_nuclei_he/nucleus",
    "arcade_stenosis_xa/stenosis_region",
    "ms_lesion_flair_mri/multiple_sclerosis_lesion",
    "glas_gland_he/gland",
    "octa_faz/foveal_avascular_zone",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default="../shared/data/tasks")
    p.add_argument("--model", default="universeg-small")
    p.add_argument("--weights", default="weights/universeg-small", help="folder with training.json (may be absent)")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="task names or dataset names")
    p.add_argument("--support-size", type=int, default=16)
    p.add_argument("--num-targets", type=int, default=10)
    p.add_argument("--max-targets", type=int, default=None, help="use only the first N targets (development)")
    p.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    p.add_argument("--max-side", type=int, default=256,
                   help="skip a scale for a task whose longest native side times the scale exceeds this")
    p.add_argument("--n-val", type=int, default=4, help="held-out support examples of the 'auto' row")
    p.add_argument("--overlap", type=float, default=0.5)
    p.add_argument("--windows-per-support", type=int, default=4)
    p.add_argument("--fg-fraction", type=float, default=0.5)
    p.add_argument("--normalize", default="window", choices=("image", "window"))
    p.add_argument("--fusion", nargs="*", default=["mean", "max"], choices=("mean", "max"))
    p.add_argument("--unet", nargs="*", default=["128", "tiled"], choices=("128", "tiled"),
                   help="U-Net rows: at 128x128 and/or on the windows of every tiled scale")
    p.add_argument("--unet-steps", type=int, default=BaselineConfig().steps)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/bench_tiling")
    return p.parse_args(argv)


def native_pairs(root: Path, stems: list[str], labels: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image (H, W) float32, foreground (H, W) bool)`` at native size for each stem."""
    files = {p.stem: p for p in list_image_files(root / "images")}
    masks = {p.stem: p for p in list_image_files(root / "masks")}
    out = []
    for s in stems:
        img = as_image_2d(read_image(files[s]), "image", str(files[s])).astype(np.float32)
        out.append((img, np.isin(as_label_map(masks[s], str(masks[s])), labels)))
    return out


def unet_windows(
    pairs: list[tuple[np.ndarray, np.ndarray]], scale: float, window: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of a 1/2-overlap grid of each support pair at ``scale``: ``(K, 1, h, w)`` x2."""
    imgs, masks = [], []
    for img, fg in pairs:
        size = scaled_size(img.shape, scale)
        x = _pad(standardize_image(torch.from_numpy(img), size), window)
        m = _pad(resize_indicators(torch.from_numpy(fg)[None], size)[0], window)
        for y, x0 in window_grid(x.shape, window, 0.5):
            imgs.append(x[y : y + window[0], x0 : x0 + window[1]])
            masks.append(m[y : y + window[0], x0 : x0 + window[1]])
    return torch.stack(imgs)[:, None], torch.stack(masks)[:, None]


def _pad(t: torch.Tensor, size: tuple[int, int], multiple: int = 1) -> torch.Tensor:
    h = max(size[0], -(-t.shape[-2] // multiple) * multiple)
    w = max(size[1], -(-t.shape[-1] // multiple) * multiple)
    return F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]))


def unet_predict(net: torch.nn.Module, img: np.ndarray, scale: float | None, window: tuple[int, int]) -> np.ndarray:
    """U-Net probabilities at native size: the whole image at ``scale`` (``None``: at ``window``)."""
    size = window if scale is None else scaled_size(img.shape, scale)
    x = standardize_image(torch.from_numpy(img), size)
    p = predict_baseline(net, _pad(x, (1, 1), net.size_multiple)[None, None])[0, 0, : size[0], : size[1]]
    return F.interpolate(p[None, None], size=img.shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def run_task(model: torch.nn.Module, task, root: Path, args: argparse.Namespace, in_training: bool) -> list[dict]:
    (ep,) = make_episodes([task], (args.support_size,), args.num_targets, seed=args.seed)
    targets = [task.stems[i] for i in ep.targets][: args.max_targets]
    support = [task.stems[i] for i in ep.supports[0]]
    tgt_pairs = native_pairs(root / task.dataset, targets, task.labels)
    sup_pairs = native_pairs(root / task.dataset, support, task.labels)
    window = tuple(model.config.input_size)
    records: list[dict] = []
    probs: dict[str, list[np.ndarray]] = {}
    seconds: dict[str, float] = {}

    def add(method: str, maps: list[np.ndarray], secs: float) -> None:
        probs[method], seconds[method] = maps, secs
        for stem, p, (_, ref) in zip(targets, maps, tgt_pairs):
            records.append(
                {
                    "task": task.name,
                    "dataset": task.dataset,
                    "in_training": in_training,
                    "support_size": ep.support_size,
                    "method": method,
                    "stem": stem,
                    "native_size": list(ref.shape),
                    "dice": float(dice(p > 0.5, ref)),
                    "task_seconds": secs,
                }
            )
        mean = np.mean([r["dice"] for r in records[-len(maps) :]])
        log.info("%s %s: dice %.4f (%.1f s)", task.name, method, mean, secs)

    images, masks = [p[0] for p in sup_pairs], [p[1] for p in sup_pairs]
    longest = max(max(p[0].shape) for p in tgt_pairs + sup_pairs)
    scales = [s for s in args.scales if s * longest <= args.max_side]
    options = {
        "overlap": args.overlap,
        "windows_per_support": args.windows_per_support,
        "fg_fraction": args.fg_fraction,
        "normalize": args.normalize,
    }
    binary = [(m != 0).astype(np.uint8) for m in masks]
    for i, scale in enumerate(scales):
        t0 = time.perf_counter()
        tiler = Predictor(model, inferer=Tiles(scale=scale, seed=args.seed, **options)).set_support(images, binary)
        if i == 0:
            t1 = time.perf_counter()
            maps = [tiler.predict(img, inferer=Resize()).probabilities for img, _ in tgt_pairs]
            add("global", maps, time.perf_counter() - t1)
            t0 += time.perf_counter() - t1
        maps = [tiler.predict(img).probabilities for img, _ in tgt_pairs]
        add(f"tiled@{scale:g}", maps, time.perf_counter() - t0)
        for rule in args.fusion:
            fused = [fuse([g, t], rule) for g, t in zip(probs["global"], maps)]
            add(f"{rule}@{scale:g}", fused, seconds["global"] + seconds[f"tiled@{scale:g}"])
    if scales:
        t0 = time.perf_counter()
        view, scores = choose_view(model, images, masks, scales, args.fusion, args.n_val, seed=args.seed, **options)
        log.info("%s: auto chose %s from %s", task.name, view.name, {k: round(v, 3) for k, v in scores.items()})
        add("auto", probs[view.name], time.perf_counter() - t0 + seconds[view.name])
        for r in records[-len(targets) :]:
            r["auto_view"] = view.name

    cfg = BaselineConfig(steps=args.unet_steps)
    seed = task_seed(args.seed, task.name, ep.support_size) % (2**31)
    if "128" in args.unet:
        t0 = time.perf_counter()
        net = train_baseline(task.images[list(ep.supports[0])], task.masks[list(ep.supports[0])], cfg, seed=seed)
        add("unet128", [unet_predict(net, img, None, window) for img, _ in tgt_pairs], time.perf_counter() - t0)
    if "tiled" in args.unet:
        for scale in scales:
            t0 = time.perf_counter()
            net = train_baseline(*unet_windows(sup_pairs, scale, window), cfg, seed=seed)
            maps = [unet_predict(net, img, scale, window) for img, _ in tgt_pairs]
            add(f"unet@{scale:g}", maps, time.perf_counter() - t0)
    return records


def table(records: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in records))
    tasks = list(dict.fromkeys(r["task"] for r in records))
    head = "| task | in training | size | " + " | ".join(methods) + " |"
    lines = [head, "|" + "---|" * (3 + len(methods))]
    means = {m: [] for m in methods}
    secs = {m: 0.0 for m in methods}
    for t in tasks:
        rows = [r for r in records if r["task"] == t]
        sizes = sorted({tuple(r["native_size"]) for r in rows})
        size = f"{sizes[0][0]}x{sizes[0][1]}" + (" (varies)" if len(sizes) > 1 else "")
        cells = []
        for m in methods:
            d = [r["dice"] for r in rows if r["method"] == m]
            if d:
                means[m].append(float(np.mean(d)))
                s = next(r["task_seconds"] for r in rows if r["method"] == m)
                secs[m] += s
                cells.append(f"{np.mean(d):.3f} ({s:.0f} s)")
            else:
                cells.append("—")
        seen = "yes" if rows[0]["in_training"] else "no (held out)"
        lines.append(f"| {t} | {seen} | {size} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean** | | | " + " | ".join(f"**{np.mean(means[m]):.3f}** ({secs[m]:.0f} s)" for m in methods) + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    root = Path(args.data_root)
    model = create_model(args.model, pretrained=True).eval()
    info = read_training_info(args.weights)
    used = training_datasets(info) if info else set()
    window = tuple(model.config.input_size)
    records: list[dict] = []
    t_start = time.perf_counter()
    for name in args.tasks:
        dataset = name.split("/", 1)[0]
        tasks = [t for t in load_task_folder(root / dataset, size=window) if name in (t.name, t.dataset)]
        if not tasks:
            raise ValueError(f"no task {name!r} in {root / dataset}")
        for task in tasks:
            records += run_task(model, task, root, args, task.dataset in used or task.name in used)
    command = "python benchmarks/bench_tiling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (
        f"Command: `{command}`\n\n"
        f"Model `{args.model}` (weights `{args.weights}`), S={args.support_size}, overlap {args.overlap}, "
        f"windows per support {args.windows_per_support}, fg fraction {args.fg_fraction}, "
        f"normalize {args.normalize}; U-Net {args.unet_steps} steps. Machine: {platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"total {time.perf_counter() - t_start:.0f} s.\n\n"
        "Mean Dice over targets at native resolution (wall time per task: support preparation, training, "
        "all targets).\n\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"args": vars(args), "records": records}, indent=1))
    atomic_write_text(out.with_suffix(".md"), header + table(records) + "\n")
    print(header + table(records))


if __name__ == "__main__":
    main()
