"""The README's "what it does" picture: ``python scripts/make_readme_figure.py [--out docs/images/what_it_does.png]``.

Five labelled slices of the bundled MNI152 task (the support set) on the left; on the right a slice
the model has not seen, and the mask the shipped weights predict for it from those five, with its
Dice against the reference. Uses the same drawing as ``universeg-plus example`` (``io.overlays``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "examples" / "data" / "mni152_coronal_tissue"
SUPPORT = ("060", "082", "104", "147", "180")
TARGET = "125"


def _tile(image: np.ndarray, mask: np.ndarray, height: int) -> np.ndarray:
    from PIL import Image

    from universeg_plus.io.images import overlay_mask

    rgb = overlay_mask(image, mask)
    w = round(rgb.shape[1] * height / rgb.shape[0])
    return np.asarray(Image.fromarray(rgb).resize((w, height), Image.Resampling.NEAREST))


def make_figure(out: Path) -> float:
    """Write the picture to ``out``; returns the Dice of the predicted mask (mean over the labels)."""
    from PIL import Image, ImageDraw, ImageFont

    import universeg_plus as up
    from universeg_plus.io.images import label_colour, read_image, write_png
    from universeg_plus.io.json_files import read_label_names
    from universeg_plus.metrics import dice

    images = [TASK / "images" / f"coronal_y{s}.png" for s in SUPPORT]
    masks = [TASK / "masks" / p.name for p in images]
    target = TASK / "images" / f"coronal_y{TARGET}.png"
    reference = read_image(TASK / "masks" / target.name)
    pred = up.segment(target, images, masks)
    score = float(np.mean([dice(pred.mask == c, reference == c) for c in pred.classes]))

    small, big, gap, font = 150, 330, 18, ImageFont.load_default(size=20)
    line = 32
    thumbs = [_tile(read_image(i), read_image(m), small) for i, m in zip(images, masks)]
    image = read_image(target)
    right = [_tile(image, np.zeros_like(reference), big), _tile(image, pred.mask, big)]
    rows = [thumbs[:3], thumbs[3:]]  # 3 on top, 2 below
    left_w = max(sum(t.shape[1] for t in row) + 8 * (len(row) - 1) for row in rows)
    width = gap + left_w + 3 * gap + sum(t.shape[1] for t in right) + gap + gap
    names = read_label_names(TASK)
    height = gap + line + big + gap + line + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    ink = (20, 20, 20)
    draw.text((gap, gap), "5 labelled examples (the support set)", fill=ink, font=font)
    for r, row in enumerate(rows):
        x = gap
        for t in row:
            canvas.paste(Image.fromarray(t), (x, gap + line + r * (small + 12)))
            x += t.shape[1] + 8
    x = gap + left_w + 3 * gap
    for title, t in zip(("a new image", f"its predicted mask (Dice {score:.2f})"), right):
        draw.text((x, gap), title, fill=ink, font=font)
        canvas.paste(Image.fromarray(t), (x, gap + line))
        x += t.shape[1] + gap
    y = gap + line + big + gap
    x = gap
    for label in sorted(names):
        draw.rectangle([x, y, x + 19, y + 19], fill=label_colour(label), outline=ink)
        draw.text((x + 26, y - 1), names[label], fill=ink, font=font)
        x += 26 + int(draw.textlength(names[label], font=font)) + 2 * gap
    write_png(out, np.asarray(canvas))
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "what_it_does.png")
    args = parser.parse_args(argv)
    score = make_figure(args.out)
    print(f"wrote {args.out} (Dice {score:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
