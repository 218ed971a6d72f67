"""``universeg-plus annotate``: label a dataset in the browser, or replay it with known masks (--simulate)."""

from __future__ import annotations

import argparse
import os
import sys

from ._device import add_device_argument
from ._predict_args import add_colour_argument

COMMAND = "annotate"
HELP = "label a folder of images or a volume, proposal by proposal (browser), or replay it with --simulate"
DESCRIPTION = """\
Open an annotation session on IMAGES_OR_VOLUME (a folder of 2D images, image files, or one NIfTI /
3D .npy volume whose slices are the items) kept in --session DIR, and serve the Annotate tab on
127.0.0.1: each item comes with a mask proposed from the items accepted so far; correct it with
clicks, then Accept, Skip or Undo. Every answer is written to DIR at once (masks/<item>.png and
session.json); running the command again on DIR continues where it stopped.

--simulate --truth MASKS replays the dataset with the known masks as the annotator (no browser) and
prints each proposal's Dice and edit cost (edited pixels over the true foreground: drawing costs 1.0).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source", metavar="IMAGES_OR_VOLUME", nargs="+", help="a folder of images, image files, or one volume"
    )
    parser.add_argument("--session", required=True, metavar="DIR", help="session folder (created or resumed)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="model name (default: the best model with pretrained weights)")
    parser.add_argument("--random-weights", action="store_true",
                        help="allow a model without pretrained weights (seeded random weights: tests only)")
    add_device_argument(parser)
    parser.add_argument("--order", choices=("in-order", "uncertain", "spread"), default=None,
                        help="next item: source order, the most uncertain proposal first, or spread (the middle "
                        "first, then the farthest from every answered item); default: spread for a volume, "
                        "else in-order")
    parser.add_argument("--adapt-steps", type=int, default=0, metavar="N",
                        help="refresh an adapted model with N steps after each accept (background; default 0: off)")
    parser.add_argument("--axis", type=int, default=2, help="slicing axis of a volume (default 2)")
    add_colour_argument(
        parser, "Fixed at session start and kept in session.json: fisher is refitted on the accepted items whenever "
        "they change, auto re-chooses at 1, 2, 4, 8, ... accepted items; default: luma for a new session, the "
        "session's own when resuming. 2D images",
        default=None,
    )
    parser.add_argument("--simulate", action="store_true", help="replay with --truth masks instead of serving")
    parser.add_argument("--truth", metavar="MASKS", help="folder of true masks (same file stems), or a label volume")
    parser.add_argument("--items", type=int, default=None, help="--simulate: answer at most this many items")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    parser.add_argument("--segment-tab", action="store_true", help="also show the few-shot Segment tab")


def _truth(args: argparse.Namespace, session) -> object:
    if args.truth is None:
        raise ValueError("--simulate needs --truth MASKS (the known masks that play the annotator)")
    if session.source.is_volume:
        from ..io.inputs import volume_array
        from ..io.nifti import volume_slices

        lab = volume_slices(volume_array(args.truth, "truth volume"), session.source.axis)
        return {it.name: lab[it.index] for it in session.items}
    return args.truth


def run(args: argparse.Namespace) -> int:
    import torch

    from ..annotate import AnnotationSession, simulate, summarize
    from ..io.tables import append_csv

    source = args.source[0] if len(args.source) == 1 else args.source
    if args.random_weights:
        torch.manual_seed(0)  # the same random weights every run: a resumed session sees the same model
    if args.simulate and args.truth is None:
        raise ValueError("--simulate needs --truth MASKS (the known masks that play the annotator)")
    if not args.simulate and args.truth is not None:
        raise ValueError("--truth is for --simulate")
    session = AnnotationSession(
        source, args.session, args.model, device=args.device, order=args.order, adapt_steps=args.adapt_steps,
        axis=args.axis, pretrained=False if args.random_weights else None, colour=args.colour,
    )
    with session:
        if session.colour != "luma":
            how = {"fisher": "refitted on the accepted items whenever they change",
                   "auto": "the leave-one-out choice made at 1, 2, 4, 8, ... accepted items, Fisher refitted at "
                   "every change"}.get(session.colour, "fixed")
            name = session.colour if isinstance(session.colour, str) else session.colour.name
            print(f"colour: {name}, {how} (now: {session.colour_projection.name})", file=sys.stderr, flush=True)
        if args.simulate:
            rows = simulate(session, _truth(args, session), items=args.items)
            print(f"{'step':>4}  {'item':30s} {'support':>7} {'dice':>6} {'edit cost':>9} {'s':>6}")
            for r in rows:
                print(f"{r.step:4d}  {r.name[:30]:30s} {r.support:7d} {r.dice:6.3f} {r.edit_cost:9.3f} "
                      f"{r.propose_seconds:6.2f}")
            if rows:
                fields = list(rows[0].as_dict())
                path = append_csv([r.as_dict() for r in rows], fields, session.folder / "simulation.csv")
                print(f"per item: {path}")
            if any(r.support > 0 for r in rows):
                s = summarize(rows)
                print(f"items proposed from labelled ones: {int(s['items'])}; total edit cost {s['total_cost']:.3f} "
                      f"of drawing them all; 8th proposal {s['cost_at']:.3f}; mean Dice {s['mean_dice']:.3f}; "
                      f"proposal time median {s['median_propose_seconds']:.2f} s, max {s['max_propose_seconds']:.2f} s")
            if session.source.is_volume and session.progress["accepted"]:
                print(f"label volume: {session.propagate()}")
            return 0
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        from ..demo.annotate_tab import launch_annotate

        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own requests to itself, one line each
        print(f"annotating {len(session.items)} item(s); session {session.folder}", file=sys.stderr, flush=True)
        launch_annotate(
            session, host=args.host, port=args.port, with_segment_tab=args.segment_tab,
            on_start=lambda app: print(f"annotation page on {app.local_url} (Ctrl+C to stop)", flush=True),
        )
    return 0
