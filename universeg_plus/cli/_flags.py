"""Messages in command-line terms: the library's argument names (``max_labels=``) become the flags
(``--max-labels``) of the command that is running.

The library's errors and warnings speak Python (``pass max_labels= to allow more``,
``support_size must be ...``); a command-line user meets them too. :func:`cli_message` is the one
place that rewrites them, with the running sub-command's own options, for every error the CLI prints
and every log record it shows (:class:`FlagNamesFilter`).
"""

from __future__ import annotations

import argparse
import logging
import re

__all__ = ["FlagNamesFilter", "cli_message", "flag_names"]

# API arguments whose CLI form is not their own name turned into a flag.
_ALIASES = {"pretrained=False": "--random-weights"}
# "(CLI: --flag)" hints in API messages are redundant once the message names the flag itself.
_CLI_HINT = re.compile(r"\s*\(CLI: [^)]*\)")


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: "--flag"}`` for every long option of ``parser`` (``max_labels`` -> ``--max-labels``)."""
    names = {}
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in ("help", argparse.SUPPRESS):
            names[action.dest] = longs[0]
    return names


def cli_message(message: str, flags: dict[str, str]) -> str:
    """``message`` with API argument names replaced by the flags in ``flags`` (see :func:`flag_names`).

    Rewritten: ``name=`` / ``name=value`` (keyword-argument form) and ``name`` followed by " must"
    (``support_size must be ...``), plus any identifier with an underscore that is an option's dest.
    Plain words that happen to be option names ("the threshold of ...") are left alone.
    """
    if not flags:
        return message
    text = _CLI_HINT.sub("", message)
    for api, flag in _ALIASES.items():
        if flag in flags.values():
            text = text.replace(api, flag)
    for dest in sorted(flags, key=len, reverse=True):
        flag = flags[dest]
        text = re.sub(rf"(?<![\w-]){re.escape(dest)}=(?!=)(\S*?)(?=[\s,;)]|$)",
                      lambda m, f=flag: f"{f} {m.group(1)}".rstrip(), text)
        text = re.sub(rf"(?<![\w-]){re.escape(dest)}(?= must\b)", flag, text)
        if "_" in dest:
            text = re.sub(rf"(?<![\w-]){re.escape(dest)}(?!\w)", flag, text)
    return text


class FlagNamesFilter(logging.Filter):
    """A logging filter that rewrites each record's message with :func:`cli_message`."""

    def __init__(self, flags: dict[str, str]) -> None:
        super().__init__()
        self.flags = flags

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = cli_message(record.getMessage(), self.flags)
        record.args = None
        return True
