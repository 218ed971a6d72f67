"""The ``--device`` option, the same on every command (the rule itself: :mod:`universeg_plus.devices`)."""

from __future__ import annotations

import argparse

from ..devices import AUTO


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device`` with the one default, ``auto`` (CUDA when available, else CPU)."""
    parser.add_argument(
        "--device", default=AUTO, metavar="DEVICE",
        help="auto (CUDA when available, else CPU; the default), cpu, cuda, cuda:1, mps",
    )
