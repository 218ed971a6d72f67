"""The compiled-library cache trusts only what the user alone could have written (issue 14).

A cached ``.so`` is native code that ``compile`` loads and runs, and its sidecar hash only proves the
pair is whole: so the folder is created ``0700``, entries are written ``0600``, and a folder or file
that belongs to another user or is writable by group/others is refused with the fix in the message.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from universeg_plus.backends import cache as cache_mod
from universeg_plus.io.hashing import sha256_file

pytestmark = pytest.mark.skipif(os.name != "posix", reason="owner and mode checks apply to POSIX file systems")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _FakeExecutable:
    """Stands in for a TVM executable: ``export_library`` writes the file it is given."""

    def export_library(self, path: str) -> None:
        Path(path).write_bytes(b"\x7fELF not really a library")


@pytest.fixture
def group_writable_umask():
    """A umask of 002 (Debian's default for user-private groups), restored afterwards."""
    old = os.umask(0o002)
    yield
    os.umask(old)


def test_missing_cache_folders_are_created_private(tmp_path, group_writable_umask):
    tmp_path.chmod(0o755)
    cache = tmp_path / "xdg" / "universeg_plus" / "tvm"
    assert cache_mod.private_cache_dir(cache) == cache
    for folder in (tmp_path / "xdg", tmp_path / "xdg" / "universeg_plus", cache):
        assert _mode(folder) == 0o700, folder
    assert _mode(tmp_path) == 0o755  # folders that existed are left as they were


def test_entries_are_written_owner_only_even_with_a_group_writable_umask(tmp_path, group_writable_umask):
    cache = tmp_path / "tvm"
    lib = cache_mod.store_entry(cache, "k" * 32, _FakeExecutable(), {"level": "O2"})
    meta = lib.with_suffix(".json")
    assert _mode(cache) == 0o700 and _mode(lib) == 0o600 and _mode(meta) == 0o600
    assert json.loads(meta.read_text())["sha256"] == sha256_file(lib)
    for p in (cache, lib, meta):
        cache_mod.check_private(p)  # what this process wrote, it trusts


@pytest.mark.parametrize("mode, who", [(0o770, "group"), (0o707, "others"), (0o777, "group and others")])
def test_a_folder_others_can_write_is_refused_with_the_fix(tmp_path, mode, who):
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(mode)
    for use in (
        lambda: cache_mod.load_entry(cache, "k" * 32),
        lambda: cache_mod.store_entry(cache, "k" * 32, _FakeExecutable(), {}),
    ):
        with pytest.raises(RuntimeError, match="refusing to use the TVM cache folder") as err:
            use()
        msg = str(err.value)
        assert f"writable by {who} (mode {mode:o})" in msg
        assert f"chmod 700 {cache}" in msg and "UNIVERSEG_PLUS_CACHE" in msg
    assert list(cache.iterdir()) == []  # nothing written


def test_a_planted_file_others_can_write_is_not_loaded(tmp_path):
    pytest.importorskip("tvm", reason="loading a cache entry needs apache-tvm (extra: universeg-plus[tvm])")
    cache = tmp_path / "tvm"
    lib = cache_mod.store_entry(cache, "k" * 32, _FakeExecutable(), {})
    lib.chmod(0o666)
    with pytest.raises(RuntimeError, match=rf"TVM cache file {lib}: it is writable by group and others") as err:
        cache_mod.load_entry(cache, "k" * 32)
    assert f"chmod go-w {lib}" in str(err.value)
    assert lib.exists()  # refused, not silently replaced


def test_a_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    cache = tmp_path / "tvm"
    cache_mod.private_cache_dir(cache)
    me = os.getuid()
    monkeypatch.setattr(cache_mod.os, "getuid", lambda: me + 1)  # as seen by another user
    with pytest.raises(RuntimeError, match=rf"TVM cache folder {cache}: it belongs to .*uid {me}\), not to you") as err:
        cache_mod.load_entry(cache, "k" * 32)
    assert "use a cache folder of your own" in str(err.value)


def test_compile_and_the_cli_refuse_an_unsafe_cache_before_building(tmp_path, capsys):
    pytest.importorskip("tvm", reason="compile needs apache-tvm (extra: universeg-plus[tvm])")
    from universeg_plus import create_model
    from universeg_plus.backends import compile as compile_model
    from universeg_plus.cli import main

    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(RuntimeError, match="writable by group and others"):
        compile_model(create_model("universeg-tiny").eval(), level="O0", cache_dir=cache)
    assert main(["compile", "universeg-tiny", "--level", "O0", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "compile: error: refusing to use the TVM cache folder" in err and f"chmod 700 {cache}" in err
    assert list(cache.iterdir()) == []
