"""What the benchmark scripts share: their common options and the machine line of their reports.

Imported as a sibling (``python benchmarks/bench_x.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import sys

import torch

from universeg_plus.devices import cpu_model


def bench_parser(doc: str | None, out: str, *, threads: int | None = None) -> argparse.ArgumentParser:
    """A parser with ``--model`` (default ``universeg-small``), ``--out`` and, where ``threads`` is given,
    ``--threads`` (torch threads, set explicitly: a busy machine stalls torch's default)."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("--model", default="universeg-small")
    if threads is not None:
        ap.add_argument("--threads", type=int, default=threads, help=f"torch threads (default: {threads})")
    ap.add_argument("--out", default=out, help=f"results prefix (.md/.json; default: {out})")
    return ap


def command() -> str:
    """The command line this process was started with, as a report states it."""
    return "python " + " ".join(sys.argv)


def machine(threads: int) -> str:
    """``<CPU model>, <threads> thread(s), torch <version>`` for a report's machine line."""
    return f"{cpu_model()}, {threads} thread(s), torch {torch.__version__}"
