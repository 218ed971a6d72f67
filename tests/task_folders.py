"""Builds small task folders (``<task>/images``, ``<task>/masks``, ``meta.json``) for the data/train tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def make_task(
    root: Path,
    name: str,
    n: int = 6,
    size: tuple[int, int] = (40, 48),
    labels: int = 2,
    binary_tasks: dict | None = None,
    seed: int = 0,
) -> Path:
    """A dataset folder with ``n`` pairs: a noisy gradient image and ``labels`` disjoint 10x10 squares."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    d = root / name
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    h, w = size
    for i in range(n):
        img = (np.linspace(0, 200, w)[None].repeat(h, 0) + rng.integers(0, 50, (h, w))).astype(np.uint8)
        lab = np.zeros((h, w), np.uint8)
        for k in range(1, labels + 1):
            band = w // labels  # labels sit in separate column bands, so none overwrites another
            y, x = rng.integers(0, h - 12), (k - 1) * band + rng.integers(0, max(1, band - 11))
            lab[y : y + 10, x : x + 10] = k
            img[y : y + 10, x : x + 10] = 40 * k
        Image.fromarray(img).save(d / "images" / f"p{i:02d}.png")
        Image.fromarray(lab).save(d / "masks" / f"p{i:02d}.png")
    meta = {"labels": {str(k): f"structure {k} (test)" for k in range(1, labels + 1)}}
    if binary_tasks:
        meta["binary_tasks"] = binary_tasks
    (d / "meta.json").write_text(json.dumps(meta))
    return d
