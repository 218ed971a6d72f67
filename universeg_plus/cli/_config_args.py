"""The arguments every config-driven command shares: ``--config``, ``--set KEY=VALUE``, ``--print-config``."""

from __future__ import annotations

import argparse

__all__ = ["add_config_arguments"]


def add_config_arguments(parser: argparse.ArgumentParser, what: str, example: str) -> None:
    """Add ``--config`` (required), ``--set`` (repeatable, into ``args.overrides``) and ``--print-config``.

    Args:
        parser: The sub-command's parser.
        what: What the file is, e.g. ``"YAML run config (see configs/)"``.
        example: One or two ``--set`` examples for the help text, e.g. ``"train.steps=500"``.
    """
    parser.add_argument(
        "--config", required=True, help=f"{what}; string values may use ${{VAR}} or ${{VAR:-default}}"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a config value, parsed as YAML (e.g. --set {example}); repeatable",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
