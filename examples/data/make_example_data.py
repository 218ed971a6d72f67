"""Build the bundled example tasks from files shipped inside two PyPI wheels.

    pip download --no-deps nilearn==0.14.1 stardist==0.9.2 -d /tmp/wheels
    python examples/data/make_example_data.py --nilearn /tmp/wheels/nilearn-0.14.1-py3-none-any.whl \
        --stardist /tmp/wheels/stardist-0.9.2-*.whl --out examples/data

Tasks written (``<out>/<task>/{images,masks}/*.png`` + ``meta.json``):

* ``mni152_coronal_tissue``: 12 coronal slices of the MNI ICBM152 2009a T1 template, each cropped to
  its brain bounding box; masks 1 = grey matter, 2 = white matter (tissue probability >= 0.5 and
  above the other tissue's), 0 = rest.
* ``dsb2018_nuclei_crops``: 9 crops of 96 x 112 px from the DSB 2018 fluorescence nuclei image
  carried by stardist; masks 1 = nucleus (instance label > 0).

Sources are read straight from the wheels (zip files); nothing is downloaded here. The same wheels
hold two of the project's full tasks (``universeg-plus build-tasks --only dsb2018_nuclei_fluo
mni152_brain_tissue_mri`` downloads and builds them; both use :mod:`universeg_plus.data.public`).
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from universeg_plus.data.public.archives import nifti_from_bytes, wheel_member

MNI_FILES = {
    k: f"nilearn/datasets/data/mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")
}
DSB_FILES = {"image": "stardist/data/images/img2d.tif", "mask": "stardist/data/images/mask2d.tif"}
CORONAL_Y = np.linspace(60, 180, 12).round().astype(int)
DSB_CROP = (96, 112)
DSB_ORIGINS = [(r, c) for r in (20, 200, 380) for c in (30, 190, 350)]

MNI_NOTICE = """\
Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its
documentation for any purpose and without fee is hereby granted, provided that the above copyright
notice appear in all copies. The authors and McGill University make no representations about the
suitability of this software for any purpose. It is provided "as is" without express or implied
warranty. The authors are not responsible for any data loss, equipment damage, property loss, or
injury to subjects or patients resulting from the use or misuse of this software package."""


def _nifti(wheel: Path, name: str) -> np.ndarray:
    return np.asarray(nifti_from_bytes(wheel_member(wheel, name)).get_fdata(), dtype=np.float64)


def _save(folder: Path, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.astype(np.uint8)).save(folder / "images" / f"{stem}.png", optimize=True)
    Image.fromarray(mask.astype(np.uint8)).save(folder / "masks" / f"{stem}.png", optimize=True)


def make_mni(wheel: Path, out: Path) -> None:
    t1, gm, wm = (_nifti(wheel, MNI_FILES[k]) for k in ("t1", "gm", "wm"))
    brain = t1 > 0.2 * t1.max()
    folder = out / "mni152_coronal_tissue"
    for y in CORONAL_Y:
        # (x, z) slice rotated so that superior is up and the subject's left on the image right
        sl = lambda v: np.rot90(v[:, int(y), :])  # noqa: E731
        img, g, w, b = sl(t1), sl(gm) / 255.0, sl(wm) / 255.0, sl(brain)
        rows, cols = np.where(b)
        r0, r1 = max(rows.min() - 4, 0), min(rows.max() + 5, b.shape[0])
        c0, c1 = max(cols.min() - 4, 0), min(cols.max() + 5, b.shape[1])
        labels = np.zeros(img.shape, np.uint8)
        labels[(g >= 0.5) & (g >= w)] = 1
        labels[(w >= 0.5) & (w > g)] = 2
        _save(folder, f"coronal_y{int(y):03d}", img[r0:r1, c0:c1], labels[r0:r1, c0:c1])
    meta = {
        "task": "brain tissue on T1 MRI (population template)",
        "labels": {"1": "grey matter", "2": "white matter"},
        "source": "MNI ICBM152 2009a nonlinear symmetric template (T1, GM and WM probability maps) as "
        f"shipped in the nilearn wheel ({wheel.name}): {', '.join(MNI_FILES.values())}",
        "slices": f"coronal (voxel y index) {[int(y) for y in CORONAL_Y]}, cropped to the brain + 4 px",
        "license": "nilearn BSD-3-Clause; ICBM152 2009 templates under the McConnell Brain Imaging Centre "
        "notice (see NOTICE)",
        "citation": "Fonov et al., NeuroImage 2011; Fonov et al., NeuroImage 2009; Collins et al., 1999",
        "caveats": "all slices come from one template volume: a demonstration, not a benchmark",
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def make_dsb(wheel: Path, out: Path) -> None:
    image = np.asarray(Image.open(io.BytesIO(wheel_member(wheel, DSB_FILES["image"]))))
    inst = np.asarray(Image.open(io.BytesIO(wheel_member(wheel, DSB_FILES["mask"]))))
    if image.max() > 255:
        raise ValueError(f"expected 8-bit intensities in {DSB_FILES['image']}, max is {image.max()}")
    folder = out / "dsb2018_nuclei_crops"
    h, w = DSB_CROP
    for r, c in DSB_ORIGINS:
        _save(folder, f"crop_r{r:03d}_c{c:03d}", image[r : r + h, c : c + w], inst[r : r + h, c : c + w] > 0)
    meta = {
        "task": "cell nuclei in fluorescence microscopy",
        "labels": {"1": "nucleus"},
        "source": f"2018 Data Science Bowl image and instance mask shipped in the stardist wheel ({wheel.name}): "
        f"{DSB_FILES['image']}, {DSB_FILES['mask']}",
        "crops": f"{h}x{w} px at (row, col) {DSB_ORIGINS}",
        "license": "DSB 2018 stage 1 data (BBBC038): CC0; stardist BSD-3-Clause (see NOTICE)",
        "citation": "Caicedo et al., Nature Methods 16, 2019",
        "caveats": "all crops come from one image: a demonstration, not a benchmark",
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def write_notice(out: Path, nilearn: Path, stardist: Path) -> None:
    def licence(wheel: Path) -> str:
        with zipfile.ZipFile(wheel) as zf:
            name = next(
                n for n in zf.namelist()
                if not n.endswith("/") and ("dist-info/licenses/" in n or n.endswith("dist-info/LICENSE"))
            )
            return zf.read(name).decode()

    text = f"""Bundled example data: provenance and licences
==============================================

mni152_coronal_tissue/
  Derived (slices, crops, thresholded tissue maps) from the MNI ICBM152 2009a nonlinear symmetric
  template files distributed in the nilearn wheel {nilearn.name}.
  The following notice must be retained:

{MNI_NOTICE}

  nilearn licence:

{licence(nilearn)}

dsb2018_nuclei_crops/
  Crops of the 2018 Data Science Bowl fluorescence image (BBBC038, released under CC0) as shipped in
  the stardist wheel {stardist.name}. Caicedo et al., "Nucleus segmentation across imaging
  experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.

  stardist licence:

{licence(stardist)}
"""
    (out / "NOTICE").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nilearn", type=Path, required=True, help="path to the nilearn wheel (.whl)")
    parser.add_argument("--stardist", type=Path, required=True, help="path to the stardist wheel (.whl)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="output folder (default: here)")
    args = parser.parse_args()
    make_mni(args.nilearn, args.out)
    make_dsb(args.stardist, args.out)
    write_notice(args.out, args.nilearn, args.stardist)


if __name__ == "__main__":
    main()
