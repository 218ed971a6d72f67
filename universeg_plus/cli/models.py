"""``universeg-plus models``: list the registered variants."""

from __future__ import annotations

import argparse
import json

COMMAND = "models"
HELP = "list the registered model variants (and which have pretrained weights)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the configs as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..registry import _MODELS, list_pretrained

    have = set(list_pretrained())
    if args.json:
        print(json.dumps({n: e.config.model_dump(mode="json") for n, e in sorted(_MODELS.items())}, indent=2))
        return 0
    for name, entry in sorted(_MODELS.items()):
        mark = "pretrained" if name in have else "-"
        print(f"{name:28s} {mark:10s} {entry.description}")
    return 0
