"""The prediction options of every command that segments with a support set (``segment``, ``segment-dataset``):
one wording and one default each, as :class:`~universeg_plus.predictor.Predictor` takes them."""

from __future__ import annotations

import argparse

from ._types import positive_int

__all__ = ["add_prediction_arguments"]


def add_prediction_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--ensemble``, ``--support-size``, ``--threshold``, ``--flips`` and ``--seed``."""
    parser.add_argument(
        "--ensemble", type=positive_int, default=1, metavar="N",
        help="average the probabilities over N different random support subsets (default: 1)",
    )
    parser.add_argument(
        "--support-size", type=positive_int, default=None, metavar="K",
        help="examples per support subset (default: all; half of them when --ensemble > 1)",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="foreground probability cut-off in (0, 1) (default: 0.5)"
    )
    parser.add_argument(
        "--flips", action="store_true", help="test-time flips: also predict on flipped inputs and average"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the support-subset draw (default: 0)")
