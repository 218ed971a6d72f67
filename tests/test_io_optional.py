from __future__ import annotations

import sys

import pytest

from universeg_plus.io.optional import require


def test_require_returns_the_first_module_when_all_import():
    import json

    assert require("json", "json.decoder", purpose="x", extra="y") is json


def test_a_missing_module_names_the_purpose_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_here_pkg", None)
    with pytest.raises(ImportError, match=r'the demo needs it: pip install "universeg-plus\[demo\]"'):
        require("json", "not_here_pkg", purpose="the demo needs it", extra="demo")


def test_no_module_name_is_a_type_error():
    with pytest.raises(TypeError, match="at least one module"):
        require(purpose="x", extra="y")
