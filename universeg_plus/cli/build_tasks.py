"""``universeg-plus build-tasks``: build the training/evaluation task folders from public sources."""

from __future__ import annotations

import argparse

COMMAND = "build-tasks"
HELP = "download the public datasets and build the task folders the training and evaluation tables use"
DESCRIPTION = """\
Build <out>/<task>/{images,masks}/*.png + meta.json for the project's 25 tasks (or --only some) from
the public sources named in the package's manifest: files of GitHub repositories at pinned commits,
two PyPI wheels (nilearn, stardist) and one Debian package (mricron-data), checked by sha256 where
pinned. Each dataset keeps its own licence (see `--list` and each meta.json): several are
non-commercial or research-only. Downloads are cached in <out>/.downloads; finished tasks are
skipped on a rerun. For each task it prints how many pairs match the project's copy exactly (shape
and pixels per label); a difference means the source or the decoding changed.
Then: universeg-plus train --set data.root=<out> ..., universeg-plus evaluate --data-root <out> ...
"""


def _mirror(text: str) -> tuple[str, str]:
    kind, sep, url = text.partition("=")
    if not sep or not url:
        raise argparse.ArgumentTypeError(f"expected KIND=URL (github|pypi|debian), got {text!r}")
    return kind, url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", metavar="DIR", help="folder for the task folders (required unless --list)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="build only these tasks (default: all)")
    parser.add_argument("--list", action="store_true", help="list the tasks with source and licence, and exit")
    parser.add_argument(
        "--mirror", type=_mirror, action="append", default=[], metavar="KIND=URL",
        help="replace a base URL: github (https://raw.githubusercontent.com), pypi "
        "(https://files.pythonhosted.org) or debian (https://deb.debian.org/debian); repeatable",
    )
    parser.add_argument("--cache", metavar="DIR", help="download cache (default: <out>/.downloads)")
    parser.add_argument("--workers", type=int, default=8, help="parallel file downloads (default: 8)")
    parser.add_argument("--force", action="store_true", help="rebuild tasks that already exist in --out")


def _source(entry: dict) -> str:
    fetch = entry["fetch"]
    if fetch["kind"] == "github":
        return f"github:{fetch['repo']}@{fetch['commit'][:10]}"
    src = entry["source"]
    return f"{src.get('package', fetch['kind'])} {src.get('version', '')}".strip()


def run(args: argparse.Namespace) -> int:
    from ..data.public import build_tasks, load_manifest

    manifest = load_manifest()
    if args.list:
        for name in sorted(manifest):
            entry = manifest[name]
            print(f"{name}: {len(entry['pairs'])} pairs, {_source(entry)}; licence: {entry['license']}")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required (or --list)")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    reports = build_tasks(
        args.out, names=args.only, mirrors=dict(args.mirror), cache=args.cache, workers=args.workers,
        force=args.force, manifest=manifest,
    )
    for r in reports:
        if r.skipped:
            print(f"{r.name}: already in {r.path} (skipped)")
        else:
            print(f"{r.name}: {r.pairs} pairs -> {r.path} ({r.matching}/{r.pairs} match the project's copy)")
    print(f"built {sum(not r.skipped for r in reports)} task(s), skipped {sum(r.skipped for r in reports)}; "
          f"licences in each meta.json")
    return 0
