"""Images per second: one process (the ``segment`` path) vs ``segment_dataset`` on Ray with 1 and 2 workers.

    python benchmarks/bench_cluster.py                      # universeg-small, 32 images, 2 rounds
    python benchmarks/bench_cluster.py --images 64 --rounds 3

Every method gets the same inputs (synthetic 128x128 PNGs), the same support set (16 examples) and
one torch thread per worker; rounds interleave the methods so that a shared machine's drifts hit all
of them. For the Ray runs each call starts its own local Ray instance (127.0.0.1) and tears it down,
so the wall time includes the cost a user pays once per run, split into:

* ``ray start``: ``ray.init`` of a local instance;
* ``to first mask``: from the call to the first result (Ray start, actor start-up: a Python process
  that imports torch and receives the model and support set from the object store, one image);
* ``steady``: images per second after the first result, ``(n - 1) / (wall - to first mask)``.

The one-process row is ``Predictor.predict_file`` in a loop (what ``universeg-plus segment`` runs per
target), model already loaded. Medians over rounds; results in ``benchmarks/results/bench_cluster.*``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import bench_parser

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _data(root: Path, n: int, size: int, support: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for sub in ("sup/images", "sup/masks", "in"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(support + n):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < (size // 6) ** 2).astype(np.uint8)
        img = np.clip(rng.random((size, size)) * 80 + 150 * mask, 0, 255).astype(np.uint8)
        if i < support:
            Image.fromarray(img).save(root / "sup/images" / f"e{i:02d}.png")
            Image.fromarray(mask).save(root / "sup/masks" / f"e{i:02d}.png")
        else:
            Image.fromarray(img).save(root / "in" / f"t{i:03d}.png")


def _one_process(model: str, root: Path, out: Path) -> dict[str, float]:
    from universeg_plus.io.images import list_image_files
    from universeg_plus.predictor import Predictor
    from universeg_plus.support import SupportSet

    pred = Predictor(model, device="cpu", pretrained=None if model == "universeg-small" else False)
    pred.set_support(SupportSet.from_folder(root / "sup", size=pred.input_size))
    files = list_image_files(root / "in")
    t0 = time.perf_counter()
    for f in files:
        pred.predict_file(f, out / f.name)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "images_per_s": len(files) / wall}


def _ray(model: str, root: Path, out: Path, workers: int) -> dict[str, float]:
    from universeg_plus.cluster import segment_dataset

    run = segment_dataset(
        root / "in", root / "sup", out, model=model, pretrained=None if model == "universeg-small" else False,
        num_workers=workers, cpus_per_worker=1, threads=1, progress=False,
    )
    n = run.counts.get("ok", 0)
    assert n == len(run.rows), run.counts
    steady = (n - 1) / max(run.seconds - run.first_result_seconds, 1e-9)
    return {"wall_s": run.seconds, "images_per_s": n / run.seconds, "ray_start_s": run.ray_start_seconds,
            "first_mask_s": run.first_result_seconds, "steady_images_per_s": steady}


def main() -> int:
    ap = bench_parser(__doc__, "benchmarks/results/bench_cluster")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--support", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the Ray workers, which also set 1 thread
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    try:
        _data(tmp, args.images, args.size, args.support)
        runs: dict[str, list[dict[str, float]]] = {"one process": [], "Ray, 1 worker": [], "Ray, 2 workers": []}
        for r in range(args.rounds):
            for name, fn in (
                ("one process", lambda o: _one_process(args.model, tmp, o)),
                ("Ray, 1 worker", lambda o: _ray(args.model, tmp, o, 1)),
                ("Ray, 2 workers", lambda o: _ray(args.model, tmp, o, 2)),
            ):
                out = tmp / f"out-{r}-{name.replace(' ', '').replace(',', '')}"
                runs[name].append(fn(out))
                print(f"round {r}: {name}: {runs[name][-1]}", file=sys.stderr)
        med = {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in runs.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = med["one process"]["images_per_s"]
    lines = [
        "# segment (one process) vs segment-dataset on a local Ray instance",
        "",
        f"Command: `python benchmarks/bench_cluster.py --model {args.model} --images {args.images} --size {args.size} "
        f"--support {args.support} --rounds {args.rounds}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, 1 torch thread per "
        "worker; a machine shared with other jobs (figures are noisy). Medians over rounds.",
        f"Load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}.",
        "",
        "| method | wall s | images/s (whole call) | steady images/s | x one process (steady) | Ray start s | to first mask s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in med.items():
        steady = m.get("steady_images_per_s", m["images_per_s"])
        lines.append(
            f"| {name} | {m['wall_s']:.1f} | {m['images_per_s']:.2f} | {steady:.2f} | {steady / base:.2f} | "
            f"{m.get('ray_start_s', 0):.1f} | {m.get('first_mask_s', 0):.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps({"args": vars(args), "medians": med, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
