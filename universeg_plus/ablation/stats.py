"""Spread over seeds and the noise rule of the ablation.

A difference to the baseline *exceeds the seed spread* when the min-max ranges over seeds of the two
variants do not overlap (for speed: over timing rounds); otherwise it is *within noise*.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["EXCEEDS", "WITHIN", "compare", "over_seeds", "spread", "strip_values", "with_verdicts"]

WITHIN = "within noise"
EXCEEDS = "exceeds the seed spread"


def spread(values: Sequence[float]) -> dict[str, float]:
    """``n_seeds, mean, std`` (sample std; 0 for one value), ``min, max`` of the finite values."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return {"n_seeds": 0, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n_seeds": len(v),
        "mean": statistics.fmean(v),
        "std": statistics.stdev(v) if len(v) > 1 else 0.0,
        "min": min(v),
        "max": max(v),
    }


def compare(baseline: Sequence[float], other: Sequence[float], unit: str = "seed") -> dict[str, Any]:
    """Difference of means and whether it exceeds the spread.

    Args:
        baseline: The baseline's values (one per seed, or per timing round).
        other: The other variant's values.
        unit: What the values are per (``"seed"`` or ``"round"``), for the verdict text.

    Returns:
        ``{"delta": mean(other) - mean(baseline), "exceeds": bool | None, "verdict": str}``;
        ``exceeds`` is ``True`` when the min-max ranges do not overlap, ``None`` with fewer than
        two values on a side (no spread to compare with).
    """
    b, o = spread(baseline), spread(other)
    delta = o["mean"] - b["mean"]
    if b["n_seeds"] < 2 or o["n_seeds"] < 2:
        return {"delta": delta, "exceeds": None, "verdict": f"n/a (fewer than 2 {unit}s)"}
    exceeds = o["min"] > b["max"] or o["max"] < b["min"]
    verdict = EXCEEDS.replace("seed", unit) if exceeds else WITHIN
    return {"delta": delta, "exceeds": exceeds, "verdict": verdict}


def over_seeds(rows: list[dict[str, Any]], keys: Sequence[str], value: str, prefix: str) -> list[dict[str, Any]]:
    """Group ``rows`` by ``keys`` and summarise ``value`` over each group (:func:`spread`).

    Returns:
        One row per group: the keys, ``<prefix>_n_seeds``, ``_mean``, ``_std``, ``_min``, ``_max``
        and ``_values`` (the group's values, for :func:`with_verdicts`; drop it with :func:`strip_values`).
    """
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[value]))
    return [
        {**dict(zip(keys, k)), **{f"{prefix}_{n}": x for n, x in spread(v).items()}, "_values": v}
        for k, v in groups.items()
    ]


def with_verdicts(
    rows: list[dict[str, Any]], keys: Sequence[str], baseline: str, unit: str = "seed"
) -> list[dict[str, Any]]:
    """Add ``delta_vs_baseline`` and ``verdict`` to rows aggregated over seeds (``_values`` per row)."""
    ref = {tuple(r[k] for k in keys): r["_values"] for r in rows if r["variant"] == baseline}
    for r in rows:
        base = ref.get(tuple(r[k] for k in keys))
        if r["variant"] == baseline:
            r["delta_vs_baseline"], r["verdict"] = 0.0, "baseline"
        elif base is None:
            r["delta_vs_baseline"], r["verdict"] = math.nan, "n/a (no baseline value)"
        else:
            c = compare(base, r["_values"], unit)
            r["delta_vs_baseline"], r["verdict"] = c["delta"], c["verdict"]
    return rows


def strip_values(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without their ``_values`` lists."""
    return [{k: v for k, v in r.items() if k != "_values"} for r in rows]
