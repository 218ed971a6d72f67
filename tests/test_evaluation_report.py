"""Summaries, CSV round trip, markdown tables and the headline comparison."""

from __future__ import annotations

import math

import pytest

from universeg_plus.evaluation.report import (
    RECORD_FIELDS,
    SUMMARY_FIELDS,
    headline,
    markdown_table,
    read_csv,
    summarize,
    write_csv,
)


def _rec(task: str, method: str, s: int, dice: float, hd: float = 2.0, actual: int | None = None, ens: int = 1):
    return {
        "task": task,
        "dataset": task.split("/")[0],
        "method": method,
        "requested_support": s,
        "support_size": s if actual is None else actual,
        "ensemble": ens,
        "target": 0,
        "stem": "p0",
        "dice": dice,
        "iou": dice / (2 - dice),
        "sensitivity": 1.0,
        "specificity": 0.5,
        "hd95": hd,
    }


RECORDS = [
    _rec("a/x", "universeg", 16, 0.8),
    _rec("a/x", "universeg", 16, 0.6, hd=math.inf),
    _rec("a/x", "unet", 16, 0.5),
    _rec("a/x", "unet", 16, 0.7),
    _rec("b/y", "universeg", 16, 0.4, actual=9),
    _rec("b/y", "universeg", 16, 0.2, actual=9),
    _rec("b/y", "unet", 16, 0.5, actual=9),
    _rec("b/y", "unet", 16, 0.5, actual=9),
]


def test_summary_values() -> None:
    rows = summarize(RECORDS)
    assert [(r["task"], r["method"]) for r in rows] == [
        ("a/x", "universeg"),
        ("a/x", "unet"),
        ("b/y", "universeg"),
        ("b/y", "unet"),
    ]
    r = rows[0]
    assert r["n_targets"] == 2
    assert r["dice_mean"] == pytest.approx(0.7, abs=1e-12)
    assert r["dice_std"] == pytest.approx(math.sqrt(0.02), abs=1e-12)  # sample std of (0.8, 0.6)
    assert r["hd95_mean"] == 2.0 and r["hd95_undefined"] == 1  # the inf is counted, not averaged
    assert rows[2]["support_size"] == 9 and rows[2]["requested_support"] == 16


def test_headline_and_markdown() -> None:
    rows = summarize(RECORDS)
    h = headline(rows, 16)
    assert h["tasks"] == 2 and h["compared"] == 2
    assert h["mean_dice"]["universeg"] == pytest.approx(0.5, abs=1e-12)
    assert h["mean_dice"]["unet"] == pytest.approx(0.55, abs=1e-12)
    assert h["wins"] == {"universeg": 1}
    md = markdown_table(rows)
    lines = md.strip().splitlines()
    assert lines[0] == "| task | S | UniverSeg | U-Net (per task) |"
    assert "| a/x | 16 | 0.700 ± 0.141 | 0.600 ± 0.141 |" in lines
    assert "| b/y | 16 → 9 | 0.300 ± 0.141 | 0.500 ± 0.000 |" in lines
    assert lines[-1] == "| **mean over 2 tasks** | 16 | **0.500** | **0.550** |"


def test_csv_round_trip(tmp_path) -> None:
    rows = summarize(RECORDS)
    p = write_csv(rows, SUMMARY_FIELDS, tmp_path / "summary.csv")
    back = read_csv(p)
    assert list(back[0]) == SUMMARY_FIELDS
    for a, b in zip(rows, back):
        for k in SUMMARY_FIELDS:
            if isinstance(a[k], float):
                assert b[k] == pytest.approx(a[k], rel=1e-5)
            else:
                assert b[k] == a[k]
    per = read_csv(write_csv(RECORDS, RECORD_FIELDS, tmp_path / "per_target.csv"))
    assert per[1]["hd95"] == math.inf and per[0]["stem"] == "p0"
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="not an evaluation CSV"):
        read_csv(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError):
        read_csv(tmp_path / "missing.csv")
