"""Generic checks and names of inputs: sizes, counts, and how an input is called in messages."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Named", "as_count", "check_size", "describe"]


@dataclass(frozen=True)
class Named:
    """An input (path, array, tensor or PIL image) with the name its error messages use.

    ``Named("/tmp/gradio/abc/case1.png", "case1.png")`` is read from the path but called
    ``case1.png``; ``SupportSet`` also takes the example name from it.
    """

    value: Any
    name: str


def _name(kind: str, where: str) -> str:
    return f"{kind} {where}".strip()


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as two positive ints ``(H, W)``; ``ValueError`` otherwise."""
    try:
        ok = len(size) == 2 and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 1 for s in size
        )
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def describe(x: Any) -> str:
    """A short name for an input in error messages (its :class:`Named` name, path, or type and shape)."""
    if isinstance(x, Named):
        return x.name
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__}{tuple(shape) if shape is not None else ''}"


def as_count(value: Any, name: str, low: int = 1, high: int | None = None, note: str = "") -> int:
    """An option that counts something (ensemble members, support examples): an int in ``low..high``.

    ``note`` follows the range in messages (e.g. ``" (the support set size)"``).

    Raises:
        TypeError: not an integer (bools are not counts: ``ensemble=True`` is refused).
        ValueError: out of range.
    """
    if high is not None:
        span = f"an integer in {low}..{high}"
    else:
        span = "a positive integer" if low == 1 else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be {span}{note}, got {value!r} ({type(value).__name__})"
            + ("; bools are not counts" if isinstance(value, bool) else "")
        )
    v = int(value)
    if v < low or (high is not None and v > high):
        raise ValueError(f"{name} must be {span}{note}, got {v}")
    return v
