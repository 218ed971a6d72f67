"""The README's uncertainty picture from a bundled example: image, mask, uncertainty, outlined regions.

    python scripts/make_uncertainty_figure.py            # -> docs/images/uncertainty.png

The last pair of ``examples/data/<task>`` is the target, the others are the support set; the shipped
model draws ``--samples`` masks (``Predictor.predict(samples=K)``, calibrated on the support set) and
the four panels show the target, its mask, the probability that the mask is wrong and the target with the
ranked high-uncertainty regions outlined (rank 1 thickest), each enlarged for reading.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from universeg_plus import Predictor, SupportSet
from universeg_plus.io.heatmaps import draw_outlines, heat_map
from universeg_plus.io.images import overlay_mask, paired_files, read_image
from universeg_plus.io.inputs import as_label_map
from universeg_plus.uncertainty import region_outlines

ROOT = Path(__file__).resolve().parents[1]


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    img = img[..., :3].mean(-1) if img.ndim == 3 else img
    lo, hi = img.min(), img.max()
    g = ((img - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(img)).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="dsb2018_nuclei_crops", help="a folder of examples/data")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=3, help="enlargement of each panel (nearest)")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "uncertainty.png"))
    args = p.parse_args()
    torch.set_num_threads(2)
    folder = ROOT / "examples" / "data" / args.task
    pairs = paired_files(folder / "images", folder / "masks")
    support = [(read_image(i), as_label_map(m, str(m))) for _, i, m in pairs[:-1]]
    target = read_image(pairs[-1][1])
    predictor = Predictor()  # the shipped model, its stored calibration applied
    predictor.set_support(SupportSet.from_arrays([s[0] for s in support], [s[1] for s in support], predictor.input_size))
    pred = predictor.predict(target, samples=args.samples, seed=args.seed)
    outlines = region_outlines(pred.regions, pred.uncertainty.shape)
    panels = [
        ("image", _grey_rgb(target)),
        ("mask", overlay_mask(target, pred.mask)),
        ("P(mask wrong)", heat_map(pred.uncertainty)),
        ("where to look", draw_outlines(_grey_rgb(target), outlines)),
    ]
    k, gap, title = args.scale, 12, 22
    h, w = target.shape[:2]
    canvas = Image.new("RGB", (4 * w * k + 5 * gap, h * k + title + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for n, (name, rgb) in enumerate(panels):
        x = gap + n * (w * k + gap)
        canvas.paste(Image.fromarray(rgb).resize((w * k, h * k), Image.Resampling.NEAREST), (x, gap + title))
        draw.text((x, gap), name, fill=(20, 20, 20), font=ImageFont.load_default(size=18))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"wrote {out}: uncertainty score {float(pred.uncertainty_score):.3f}, regions "
          + ", ".join(f"#{r.rank} {r.area} px" for r in pred.regions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
