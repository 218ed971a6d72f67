"""Members of downloaded archives: files inside a wheel (zip) or a Debian package (ar + tar)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from typing import Any

__all__ = ["deb_member", "nifti_from_bytes", "wheel_member"]


def wheel_member(wheel: str | os.PathLike, name: str) -> bytes:
    """The bytes of ``name`` inside the wheel (a zip file).

    Raises:
        FileNotFoundError: ``name`` is not in the wheel.
    """
    with zipfile.ZipFile(wheel) as zf:
        try:
            return zf.read(name)
        except KeyError as exc:
            raise FileNotFoundError(f"{name} is not in {os.fspath(wheel)}") from exc


def deb_member(deb: str | os.PathLike, name: str) -> bytes:
    """The bytes of ``name`` (e.g. ``usr/share/...``) inside a Debian package's data archive.

    A ``.deb`` is an ``ar`` archive holding ``data.tar.{xz,gz,zst,...}``; xz and gz are read here.

    Raises:
        ValueError: not an ar archive, or no readable data archive in it.
        FileNotFoundError: ``name`` is not in the package.
    """
    with open(deb, "rb") as f:
        blob = f.read()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{os.fspath(deb)} is not a Debian package (no ar signature)")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        member = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if member.startswith("data.tar"):
            try:
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                    for info in tar:
                        if info.name.lstrip("./") == name and info.isfile():
                            return tar.extractfile(info).read()  # type: ignore[union-attr]
            except tarfile.TarError as exc:
                raise ValueError(f"cannot read {member} of {os.fspath(deb)}: {exc}") from exc
            raise FileNotFoundError(f"{name} is not in {os.fspath(deb)}")
    raise ValueError(f"no data.tar archive in {os.fspath(deb)}")


def nifti_from_bytes(data: bytes) -> Any:
    """A ``nibabel.Nifti1Image`` from the bytes of a ``.nii`` or ``.nii.gz`` file."""
    import nibabel as nib

    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return nib.Nifti1Image.from_bytes(data)
