"""``universeg-plus demo``: the few-shot segmentation demo in the browser (gradio)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._device import add_device_argument

COMMAND = "demo"
HELP = "serve the few-shot segmentation demo in the browser (needs the [demo] extra)"
DESCRIPTION = """\
Serve a gradio page where you upload a few labelled examples (support images and masks) and a
target image or volume slice, press Segment and see the predicted mask, the probability map and,
with a reference mask, the Dice. It listens on 127.0.0.1 only unless --host says otherwise; nothing
is sent elsewhere unless you pass --share (a public gradio.live tunnel).
Needs gradio: pip install "universeg-plus[demo]".
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="interface to listen on; 0.0.0.0 opens it to the network (default: 127.0.0.1)",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    parser.add_argument(
        "--share", action="store_true", help="also open a public gradio.live link (traffic leaves the machine)"
    )
    parser.add_argument(
        "--model", default=None, metavar="NAME",
        help="model selected at start (default: universeg_plus.default_model_name(), the best model with "
        "pretrained weights; only models with weights are offered)",
    )
    parser.add_argument(
        "--examples", default=None, metavar="DIR",
        help="folder of example tasks <task>/{images,masks} to prefill from (default: the repository's examples/data)",
    )
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import logging

    from ..demo import launch
    from ..devices import resolve_device

    kwargs = {"default_model": args.model, "device": resolve_device(args.device)}
    if args.examples is not None:
        if not os.path.isdir(args.examples):
            raise FileNotFoundError(f"--examples folder not found: {args.examples}")
        kwargs["examples_dir"] = args.examples
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own requests to itself, one line each
    launch(host=args.host, port=args.port, share=args.share, on_start=_announce, **kwargs)
    return 0


def _announce(demo: Any) -> None:
    """Where the page is, in the command's own terms (gradio's start-up text is silenced)."""
    print(f"demo running on {demo.local_url} (Ctrl+C to stop)", flush=True)
    if getattr(demo, "share_url", None):
        print(f"public link: {demo.share_url} (traffic goes through gradio.live while it runs)", flush=True)
    else:
        print("local only; pass --share for a public gradio.live link", flush=True)
