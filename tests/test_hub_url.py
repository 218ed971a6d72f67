"""hub/url.py: a pinned download is kept only when it is the pinned file (127.0.0.1 server)."""

from __future__ import annotations

import hashlib

import pytest

from hub_server import ReleaseServer
from universeg_plus.hub import url as url_module
from universeg_plus.hub.url import DownloadError, download_pinned
from universeg_plus.io.hashing import git_blob_id

DATA = bytes(range(256)) * 40


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_the_pinned_file_is_kept_with_its_ids(tmp_path):
    with ReleaseServer({"/f.pt": DATA}) as server:
        got = download_pinned(server.url("/f.pt"), tmp_path / "c" / "f.pt", _blob(DATA), size=len(DATA))
    assert got.path.read_bytes() == DATA and got.size == len(DATA)
    assert got.git_blob_id == _blob(DATA) == git_blob_id(got.path)
    assert got.sha256 == hashlib.sha256(DATA).hexdigest()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["f.pt"]  # no temporary left


def test_wrong_size_or_bytes_or_too_much_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    dest = tmp_path / "c" / "f.pt"
    with ReleaseServer({"/f.pt": DATA}) as server:
        address = server.url("/f.pt")
        with pytest.raises(ValueError, match=f"the server announces {len(DATA):,} bytes, the pinned file has 10"):
            download_pinned(address, dest, _blob(DATA), size=10)
        with pytest.raises(ValueError, match=f"refused {dest} downloaded from {address}: it is not the pinned file"):
            download_pinned(address, dest, "0" * 40)
        monkeypatch.setattr(url_module, "MAX_UNPINNED_BYTES", 1000)
        with pytest.raises(ValueError, match="more than 1,000 bytes"):
            download_pinned(address, dest, _blob(DATA))
        with pytest.raises(DownloadError, match="answered HTTP 404"):
            download_pinned(server.url("/missing.pt"), dest, _blob(DATA))
    assert [p for p in (tmp_path / "c").rglob("*") if p.is_file()] == []
    with pytest.raises(DownloadError, match="could not be reached"):
        download_pinned("http://127.0.0.1:9/f.pt", dest, _blob(DATA))


def test_a_file_url_mirror_is_checked_like_any_other(tmp_path):
    mirror = tmp_path / "elsewhere" / "f.pt"
    mirror.parent.mkdir()
    mirror.write_bytes(DATA)
    got = download_pinned(mirror.as_uri(), tmp_path / "c" / "f.pt", _blob(DATA))
    assert got.path.read_bytes() == DATA
    with pytest.raises(ValueError, match="it is not the pinned file"):
        download_pinned(mirror.as_uri(), tmp_path / "d" / "f.pt", _blob(DATA[:-1]))
