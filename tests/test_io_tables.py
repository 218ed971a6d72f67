"""CSV tables (atomic rewrite, durable append, partial-line repair) and markdown tables."""

from __future__ import annotations

import math

import pytest

from universeg_plus.io import tables
from universeg_plus.io.tables import (
    append_csv,
    csv_header,
    format_cell,
    keep_csv_rows,
    markdown_table,
    read_csv_rows,
    write_csv,
)


def test_format_cell():
    assert [format_cell(v) for v in (None, 0.123456789, math.nan, math.inf, -math.inf, 3, "a", 1e-9)] == [
        "", "0.123457", "nan", "inf", "-inf", "3", "a", "1e-09"]


def test_write_csv_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_csv([{"a": 1, "b": 0.5, "extra": "x"}, {"a": 2}], ["a", "b"], path)
    assert path.read_text() == "a,b\n1,0.5\n2,\n"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tables, "_render", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_csv([{"a": 3}], ["a", "b"], path)
    assert path.read_text() == "a,b\n1,0.5\n2,\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_append_writes_the_header_once_and_repairs_a_partial_line(tmp_path, caplog):
    path = tmp_path / "sub" / "log.csv"
    append_csv([{"step": 1, "loss": 0.5}], ["step", "loss"], path)
    append_csv([{"step": 2, "loss": 0.25}, {"step": 3, "loss": "x,y"}], ["step", "loss"], path)
    assert path.read_text() == 'step,loss\n1,0.5\n2,0.25\n3,"x,y"\n'
    with open(path, "a") as fh:
        fh.write("4,0.1")  # a crash in the middle of a row
    assert [r["step"] for r in read_csv_rows(path)] == ["1", "2", "3"]
    append_csv([{"step": 4, "loss": 0.125}], ["step", "loss"], path)
    assert path.read_text().splitlines()[-2:] == ['3,"x,y"', "4,0.125"]
    assert "incomplete last line" in caplog.text
    with pytest.raises(ValueError, match=r"has columns \['step', 'loss'\], expected \['step', 'dice'\]"):
        append_csv([{"step": 5}], ["step", "dice"], path)


def test_append_after_a_crash_inside_the_header(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("step,lo")
    assert csv_header(path) is None
    append_csv([{"step": 1, "loss": 2}], ["step", "loss"], path)
    assert path.read_text() == "step,loss\n1,2\n"


def test_keep_rows_and_read_errors(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("step,task\r\n1,a\r\n2,a\r\n3,a\r\n")
    assert keep_csv_rows(path, lambda r: int(r["step"]) <= 2) == 1
    assert path.read_text() == "step,task\n1,a\n2,a\n"
    assert keep_csv_rows(tmp_path / "missing.csv", lambda r: True) == 0
    with pytest.raises(FileNotFoundError, match="missing.csv does not exist"):
        read_csv_rows(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    assert read_csv_rows(tmp_path / "empty.csv") == [] and csv_header(tmp_path / "empty.csv") is None


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, "x"]]) == ["| a | b |", "|---|---|", "| 1 | x |"]
    assert markdown_table(["a", "b"], [], "lr")[1] == "|---|---:|"
    with pytest.raises(ValueError, match="2 characters"):
        markdown_table(["a", "b"], [], "l")
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        markdown_table(["a", "b"], [["x"]])
