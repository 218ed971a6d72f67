"""The prediction options of every command that segments with a support set (``segment``, ``segment-dataset``,
``annotate`` for ``--colour``): one wording and one default each, as :class:`~universeg_plus.predictor.Predictor`
takes them."""

from __future__ import annotations

import argparse

from ._types import positive_int

__all__ = ["add_colour_argument", "add_prediction_arguments", "colour_line"]


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


def add_colour_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, where: str = "", default: str | None = "luma"
) -> None:
    """``--colour {luma,fisher,auto}`` (alias ``--color``); ``where`` ends the help text."""
    parser.add_argument(
        "--colour", "--color", choices=("luma", "fisher", "auto"), default=default,
        help="how colour (RGB) images become the network's one channel, fitted on the support set and applied to "
        f"every target: luma ({'default, ' if default == 'luma' else ''}grey as always), fisher (the RGB direction "
        "that best separates the masks' foreground from background), auto (the best of luma, R, G, B and fisher "
        f"by leave-one-out Dice on the support set). {where or 'Needs 2D support image files'} (docs/colour.md)",
    )


def colour_line(name: str, scores: dict[str, float]) -> str:
    """``colour: fisher (leave-one-out Dice on the support set: luma 0.346, ..., fisher 0.828)``."""
    loo = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return f"colour: {name}" + (f" (leave-one-out Dice on the support set: {loo})" if loo else "")
