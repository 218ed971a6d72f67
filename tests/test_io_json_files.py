"""Small JSON files: read back checked, written atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from universeg_plus.io.json_files import read_json_object, write_json


def test_round_trip_and_missing(tmp_path):
    path = write_json(tmp_path / "a" / "m.json", {"x": 1, "p": Path("/q")})
    assert path.read_text() == '{\n  "x": 1,\n  "p": "/q"\n}\n'
    assert read_json_object(path) == {"x": 1, "p": "/q"}
    assert read_json_object(tmp_path / "none.json") is None


@pytest.mark.parametrize("text, match", [("{", "cannot parse"), ("[1]", "must hold a JSON object, got list")])
def test_bad_files_are_named(tmp_path, text, match):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        read_json_object(tmp_path / "m.json")
    assert "m.json" in str(err.value)
