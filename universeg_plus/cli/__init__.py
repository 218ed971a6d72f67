"""The ``universeg-plus`` command.

Each sub-command is a module in this package defining ``COMMAND`` (its name), ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``; modules are discovered, so adding a
command never edits this file. Heavy imports belong inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from ._flags import FlagNamesFilter, cli_message, flag_names

__all__ = ["build_parser", "main"]

log = logging.getLogger("universeg_plus")

# Errors a user can act on: printed as one line, exit code 2. Anything else is a bug: traceback.
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError, RuntimeError, OSError)


def _commands() -> list:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "COMMAND") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.COMMAND)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every discovered sub-command."""
    parser = argparse.ArgumentParser(
        prog="universeg-plus",
        description="In-context medical image segmentation: segment new images from a few labelled examples.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _commands():
        p = sub.add_parser(mod.COMMAND, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _flags=flag_names(p))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # library warnings in the command's terms, too
        handler.addFilter(FlagNamesFilter(args._flags))
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("universeg-plus: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        print(f"universeg-plus {args.command}: error: {cli_message(str(exc), args._flags)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
