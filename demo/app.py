"""Launch the few-shot segmentation demo: ``python demo/app.py [--host 127.0.0.1] [--port N] [--share]``.

A thin launcher: the page lives in :mod:`universeg_plus.demo` (so it also works pip-installed, as
``universeg-plus demo``); this file takes the same options.
"""

from __future__ import annotations

import os

# before anything imports gradio or huggingface_hub (both read these at import time)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from universeg_plus.cli import demo as demo_command  # noqa: E402
from universeg_plus.demo import build_demo  # noqa: E402

__all__ = ["build_demo", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and serve the demo until interrupted; returns the exit code."""
    parser = argparse.ArgumentParser(prog="demo/app.py", description=demo_command.DESCRIPTION)
    demo_command.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return demo_command.run(args)


if __name__ == "__main__":
    sys.exit(main())
