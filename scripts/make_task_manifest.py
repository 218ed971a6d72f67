"""Write the public-task manifest (``universeg_plus/data/public/manifest.json``) from task folders' meta.json.

    python scripts/make_task_manifest.py ../shared/data/tasks

Reads only each task's ``meta.json`` (sources, licences, label names, per-pair source paths, shapes
and label pixel counts); no image or mask is read or copied. ``universeg-plus build-tasks`` rebuilds
the task folders from the public sources the manifest names and checks them against those counts.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "universeg_plus" / "data" / "public" / "manifest.json"

PYPI = {
    "nilearn": {
        "url": "{pypi}/packages/9e/4f/6d93620cf4c7f642a8fb85fef8b6e30a24764ef99774026550291dea6fdd/"
        "nilearn-0.14.1-py3-none-any.whl",
        "sha256": "725206484e9fb3f6691f9c2d20204a068759d5072f12055324702ee0cb2bbe8a",
    },
    "stardist": {
        "url": "{pypi}/packages/4a/41/1552e918b9c79d46f878f65fb7fd1594ade491cfa7782c2732ccd4a70209/"
        "stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "sha256": "2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023",
    },
}
DEBIAN_MRICRON = {
    "url": "{debian}/pool/main/m/mricron/mricron-data_1.2.20211006+dfsg-4_all.deb",
    "sha256": "d40aa0ed66cf89bf6cafa049ad3884703c9d975c2ee2737525b7196528df9d6f",
}
_KEEP = ("modality", "labels", "binary_tasks", "source", "dataset", "license", "caveats")


def _colour_rule(caveats: list[str]) -> dict:
    for c in caveats:
        m = re.search(r"label map (\{.*?\})(?:, then labels merged (\{.*?\}))?$", c)
        if m:
            colours = [[list(ast.literal_eval(k)), int(v)] for k, v in ast.literal_eval(m.group(1)).items()]
            rule: dict = {"colours": colours}
            if m.group(2):
                rule["merge"] = {str(k): int(v) for k, v in ast.literal_eval(m.group(2)).items()}
            return rule
        if "thresholded at gray > 127" in c:
            return {"threshold": 127}
    raise ValueError(f"no mask rule in caveats {caveats}")


def _counts(pair: dict) -> dict:
    return {"shape": pair["shape"], "label_pixels": pair["label_pixels"]}


def task_entry(meta: dict) -> dict:
    name, source, pairs = meta["name"], meta["source"], meta["pairs"]
    entry = {k: meta[k] for k in _KEEP if k in meta}
    entry["name"] = name
    if "repo" in source:
        repo = source["repo"].removeprefix("github:")
        fetch = {"kind": "github", "repo": repo, "commit": source["commit"]}
        if name == "isbi2012_em_membranes":
            recipe = {"kind": "tiles", "tile": 256, "downsample": 1, "mask": {"below": 128}}
            out = []
            for p in pairs:
                m = re.match(r"(\S+) \+ (\S+) crop \[(\d+):\d+,(\d+):\d+\]$", p["source"])
                out.append({"stem": p["stem"], "image": m.group(1), "mask": m.group(2),
                            "origin": [int(m.group(3)), int(m.group(4))], **_counts(p)})
        elif name == "drosophila_vnc_em":
            recipe = {"kind": "tiles", "tile": 512, "downsample": 2, "mask": {"layers": [
                ["membranes", 1], ["mitochondria", 2], ["synapses", 3]], "foreground": "minority"}}
            out = []
            for p in pairs:
                m = re.match(r"(\S+) \+ stack1/\{[a-z,]+\}/(\S+) crop \[(\d+):\d+,(\d+):\d+\] /2$", p["source"])
                out.append({"stem": p["stem"], "image": m.group(1), "mask": f"stack1/{{layer}}/{m.group(2)}",
                            "origin": [int(m.group(3)), int(m.group(4))], **_counts(p)})
        else:
            fill = name == "hc18_fetal_head_us"
            recipe = {"kind": "pairs", "max_side": 256,
                      "mask": {"threshold": 127, "fill_holes": True} if fill else _colour_rule(meta["caveats"])}
            out = []
            for p in pairs:
                image, mask = p["source"].removesuffix(" (outline filled)").split(" + ")
                out.append({"stem": p["stem"], "image": image, "mask": mask, **_counts(p)})
    elif name == "dsb2018_nuclei_fluo":
        fetch = {"kind": "pypi", **PYPI["stardist"]}
        recipe = {"kind": "stardist_tiles", "image": "stardist/data/images/img2d.tif",
                  "mask": "stardist/data/images/mask2d.tif", "tile": 128, "percentiles": [0.5, 99.8]}
        crop = re.compile(r"crop \[(\d+):\d+,(\d+):\d+\]")
        out = [{"stem": p["stem"], "origin": [int(x) for x in crop.match(p["source"]).groups()], **_counts(p)}
               for p in pairs]
    elif name == "mni152_brain_tissue_mri":
        fetch = {"kind": "pypi", **PYPI["nilearn"]}
        recipe = {"kind": "mni152_tissue",
                  "files": {k: f"nilearn/datasets/data/mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz"
                            for k in ("t1", "gm", "wm")}}
        out = [{"stem": p["stem"], **_counts(p)} for p in pairs]
    elif name == "colin27_aal_mri":
        fetch = {"kind": "debian", **DEBIAN_MRICRON}
        recipe = {"kind": "atlas_slices", "image": "usr/share/mricron/templates/ch2.nii.gz",
                  "labels": "usr/share/mricron/templates/aal.nii.gz", "percentiles": [0.5, 99.5]}
        out = [{"stem": p["stem"], **_counts(p)} for p in pairs]
    else:
        raise ValueError(f"no recipe for task {name}")
    files = [p[k] for p in out for k in ("image", "mask") if k in p]
    if files:  # paths relative to the deepest folder all of them share
        root = os.path.commonpath(files) + "/"
        fetch["root"] = root
        for p in out:
            for k in ("image", "mask"):
                p[k] = p[k].removeprefix(root)
    entry.update(fetch=fetch, recipe=recipe, pairs=out)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", type=Path, help="folder of task folders, each with a meta.json")
    parser.add_argument("--out", type=Path, default=OUT, help=f"manifest to write (default: {OUT})")
    args = parser.parse_args()
    tasks = [task_entry(json.loads(p.read_text())) for p in sorted(args.tasks.glob("*/meta.json"))]
    manifest = {"format": 1, "tasks": tasks}
    args.out.write_text(json.dumps(manifest, indent=None, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(tasks)} tasks, {sum(len(t['pairs']) for t in tasks)} pairs")


if __name__ == "__main__":
    main()
