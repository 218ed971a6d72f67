"""``universeg-plus models``: list the registered variants and the pretrained-weights table."""

from __future__ import annotations

import argparse
import json

COMMAND = "models"
HELP = "list the registered model variants (and which have pretrained weights)"
DESCRIPTION = (
    "One line per registered variant: whether pretrained weights are declared for it, their mean Dice on "
    "the held-out tasks at support size 16 (from the weights' model card), and which one every default "
    "uses (the best with weights); then each set of weights' licence and citation. --json prints all of it, "
    "with each variant's config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print variants, configs and weights as JSON")


def run(args: argparse.Namespace) -> int:
    from ..registry import PRETRAINED, default_model_name, list_models, model_entry

    default = default_model_name()
    if args.json:
        out = {
            name: {
                "description": model_entry(name).description,
                "config": model_entry(name).config.model_dump(mode="json"),
                "pretrained": PRETRAINED[name].model_dump(mode="json") if name in PRETRAINED else None,
                "default": name == default,
            }
            for name in list_models()
        }
        print(json.dumps(out, indent=2))
        return 0
    for name in list_models():
        entry = PRETRAINED.get(name)
        if entry is None:
            weights = "-"
        elif entry.heldout_dice is None:
            weights = "pretrained, fetched on first use" if entry.url else "pretrained"
        else:
            weights = f"pretrained, held-out Dice {entry.heldout_dice:.3f}"
        mark = " (default)" if name == default else ""
        print(f"{name + mark:34s} {weights:36s} {model_entry(name).description}")
    for name, entry in sorted(PRETRAINED.items()):
        print(f"\n{name} weights: licence: {entry.license}")
        if entry.citation:
            print(f"{name} weights: cite: {entry.citation}")
    return 0
