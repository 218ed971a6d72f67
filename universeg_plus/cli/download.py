"""``universeg-plus download``: fetch pretrained weights into the local cache for offline use."""

from __future__ import annotations

import argparse

COMMAND = "download"
HELP = "download pretrained weights (a table name or a hub repo id) into the cache for offline use"
DESCRIPTION = (
    "Fetch config.json + model.safetensors for a name from `universeg-plus models` or a Hugging Face "
    "Hub repo id (org/repo), verify the sha256, and print where they are. Later loads then work "
    "with HF_HUB_OFFLINE=1. `universeg-v1` is the official UniverSeg release: downloaded once from the "
    "authors' GitHub release (or $UNIVERSEG_PLUS_OFFICIAL_URL), checked against its pinned git blob id, "
    "read as tensors only and converted to safetensors in the user cache ($UNIVERSEG_PLUS_CACHE, "
    "default ~/.cache/universeg_plus)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="NAME|REPO", help="pretrained name or hub repo id")
    parser.add_argument("--revision", default=None, help="hub branch, tag or commit (repo ids only; default main)")
    parser.add_argument(
        "--cache-dir", default=None,
        help="cache folder (default: HF_HUB_CACHE for hub repos, the user cache for universeg-v1)",
    )
    parser.add_argument("--force", action="store_true", help="download again even if cached")


def run(args: argparse.Namespace) -> int:
    from ..hub import read_sha256_sidecar, verify_weights_file
    from ..hub.pretrained import fetch_pretrained
    from ..model import UniverSegPlus
    from ..registry import PRETRAINED

    config, weights, expected = fetch_pretrained(
        args.source, args.revision, model_cls=UniverSegPlus, cache_dir=args.cache_dir, force_download=args.force
    )
    digest = verify_weights_file(weights, expected, args.source)
    checked = expected is not None or read_sha256_sidecar(weights) is not None
    print(f"config  {config}")
    print(f"weights {weights}")
    print(f"sha256  {digest}{'' if checked else '  (no published hash to check against)'}")
    entry = PRETRAINED.get(args.source)
    if entry is not None:
        print(f"licence {entry.license}")
    return 0
