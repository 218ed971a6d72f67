"""``universeg-plus convert-official``: the official UniverSeg checkpoint as safetensors + config.json."""

from __future__ import annotations

import argparse

COMMAND = "convert-official"
HELP = "convert the official UniverSeg .pt checkpoint into a safetensors weights folder"
DESCRIPTION = (
    "Read the official UniverSeg v1 checkpoint (e.g. universeg_v1_nf64_ss64_STA.pt) with "
    "torch.load(weights_only=True) - a file that would run code is refused - load it strictly into "
    "universeg-v1 and write OUT_DIR/{model.safetensors,config.json,README.md}. Prints the sha256."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the official .pt checkpoint")
    parser.add_argument("out_dir", help="folder to write (created if needed)")
    parser.add_argument("--overwrite", action="store_true", help="replace weights already in OUT_DIR")


def run(args: argparse.Namespace) -> int:
    import json

    from ..factory import convert_official
    from ..hub.official import SOURCE_NAME

    saved = convert_official(args.checkpoint, args.out_dir, overwrite=args.overwrite)
    source = json.loads((saved.directory / SOURCE_NAME).read_text(encoding="utf-8"))
    print(f"wrote {saved.directory} ({saved.num_parameters:,} parameters)")
    print(f"sha256 {saved.sha256}  {saved.weights}")
    verdict = "the official release" if source["official_release"] else "NOT the pinned official release"
    print(f"source git blob id {source['git_blob_id']} ({verdict}), sha256 {source['sha256']}")
    return 0
