"""The ``--device`` option, the same on every command (the rule itself: :mod:`universeg_plus.devices`)."""

from __future__ import annotations

import argparse

from ..devices import AUTO


#: What ``auto`` means where the command itself runs the model.
AUTO_HERE = "CUDA when available, else CPU"


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, auto: str = AUTO_HERE) -> None:
    """``--device`` with the one default, ``auto`` (``auto``: what it means for this command)."""
    parser.add_argument(
        "--device", default=AUTO, metavar="DEVICE", help=f"auto ({auto}; the default), cpu, cuda, cuda:1, mps",
    )
