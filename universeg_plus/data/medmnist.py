"""MedMNIST as a source of target images (it has class labels, no masks).

Reads the standard MedMNIST ``.npz`` files from a local folder in the medmnist package's layout
(``{flag}.npz`` for 28 px, ``{flag}_{size}.npz`` otherwise; arrays ``{split}_images`` and
``{split}_labels``), 2D (``(N, H, W)`` or ``(N, H, W, 3)``) and 3D (``(N, D, H, W)``). Nothing is
downloaded unless ``download=True`` (then the file is fetched from the URL in ``medmnist.INFO`` and
its MD5 checked). Flags, sizes, URLs and licences come from the medmnist package (extra
``[medmnist]``); its dataset classes are not used (they assert the official sample counts and pull
torchvision).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import atomic_path

__all__ = ["MedMNISTSource", "medmnist_flags", "medmnist_path"]

log = logging.getLogger(__name__)
_SPLITS = ("train", "val", "test")


def _info() -> dict[str, dict[str, Any]]:
    try:
        from medmnist.info import INFO
    except ImportError as exc:
        raise ImportError(
            'MedMNIST support needs the medmnist package: pip install "universeg-plus[medmnist]" '
            "(install medmnist with --no-deps to keep your torch)"
        ) from exc
    return INFO


def medmnist_flags() -> list[str]:
    """All MedMNIST dataset flags (e.g. ``"organamnist"``, ``"organmnist3d"``)."""
    return sorted(_info())


def _sizes(info: dict[str, Any]) -> list[int]:
    return [28] + sorted(int(k[4:]) for k in info if k.startswith("url_"))


def _default_root() -> Path:
    return Path(os.environ.get("MEDMNIST_ROOT", Path.home() / ".medmnist"))


def medmnist_path(flag: str, size: int = 28, root: str | os.PathLike | None = None) -> Path:
    """Where ``flag`` at ``size`` lives under ``root`` (default ``$MEDMNIST_ROOT`` or ``~/.medmnist``)."""
    info = _info()
    if flag not in info:
        raise ValueError(f"unknown MedMNIST flag {flag!r}; valid: {', '.join(sorted(info))}")
    sizes = _sizes(info[flag])
    if size not in sizes:
        raise ValueError(f"{flag} comes in sizes {sizes}, got {size}")
    base = Path(root) if root is not None else _default_root()
    return base / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")


def _download(url: str, dest: Path, md5: str | None) -> None:
    import urllib.request

    log.info("downloading %s -> %s", url, dest)
    digest = hashlib.md5()
    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:
        for block in iter(lambda: resp.read(1 << 20), b""):
            fh.write(block)
            digest.update(block)
        if md5 is not None and digest.hexdigest() != md5:
            raise RuntimeError(f"MD5 mismatch for {url}: expected {md5}, got {digest.hexdigest()}")


class MedMNISTSource:
    """One split of one MedMNIST dataset, held in memory.

    Args:
        flag: Dataset flag, e.g. ``"organamnist"`` or ``"organmnist3d"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: 28, 64, 128 or 224 for 2D; 28 or 64 for 3D.
        root: Folder with the ``.npz`` files (default ``$MEDMNIST_ROOT`` or ``~/.medmnist``).
        download: Fetch the file when it is missing (off by default: nothing is downloaded silently).

    Attributes:
        images: ``(N, H, W)``, ``(N, H, W, 3)`` (RGB sets) or ``(N, D, H, W)`` (3D) uint8.
        labels: ``(N, K)`` class labels.
        info: The medmnist metadata (description, task, label names, licence).
    """

    def __init__(
        self,
        flag: str,
        split: str = "test",
        size: int = 28,
        root: str | os.PathLike | None = None,
        download: bool = False,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        self.path = medmnist_path(flag, size, root)
        self.flag, self.split, self.size = flag, split, size
        self.info = _info()[flag]
        if not self.path.is_file():
            if not download:
                raise FileNotFoundError(
                    f"{self.path} not found; put the MedMNIST file there or pass download=True"
                )
            suffix = "" if size == 28 else f"_{size}"
            _download(self.info[f"url{suffix}"], self.path, self.info.get(f"MD5{suffix}"))
        keys = (f"{split}_images", f"{split}_labels")
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                missing = [k for k in keys if k not in npz.files]
                if missing:
                    raise ValueError(f"missing array(s) {missing}; found {sorted(npz.files)}")
                self.images = npz[keys[0]]
                self.labels = npz[keys[1]]
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"cannot read MedMNIST file {self.path}: {exc}") from exc
        self.is_3d = flag.endswith("3d")
        expected = 4 if self.is_3d else (3, 4)
        if self.images.ndim not in np.atleast_1d(expected) or len(self.images) != len(self.labels):
            raise ValueError(
                f"{self.path}: {keys[0]} has shape {self.images.shape} and {keys[1]} {self.labels.shape}; "
                f"expected {'(N, D, H, W)' if self.is_3d else '(N, H, W) or (N, H, W, 3)'} and N labels"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return f"MedMNISTSource({self.flag!r}, split={self.split!r}, size={self.size}, n={len(self)})"

    def __getitem__(self, index: int) -> np.ndarray:
        """Image ``index``: ``(H, W)``/``(H, W, 3)``, or a ``(D, H, W)`` volume for 3D sets."""
        return self.images[index]

    def label_names(self, index: int) -> list[str]:
        """The class names of example ``index``."""
        names = self.info["label"]
        row = np.atleast_1d(self.labels[index])
        if self.info.get("task", "").startswith("multi-label"):
            return [names[str(i)] for i, v in enumerate(row) if v]
        return [names[str(int(v))] for v in row]

    def targets(self, n: int | None = None, seed: int = 0, axis: int = 0) -> list[np.ndarray]:
        """Up to ``n`` images drawn without replacement (all when ``None``), as 2D arrays.

        3D examples give their middle slice along ``axis`` (0, 1 or 2 of ``(D, H, W)``).
        """
        total = len(self)
        if n is not None and not 1 <= n <= total:
            raise ValueError(f"n must be in 1..{total}, got {n}")
        order = np.random.default_rng(seed).permutation(total)[: total if n is None else n]
        if not self.is_3d:
            return [self.images[i] for i in order]
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
        return [np.take(self.images[i], self.images[i].shape[axis] // 2, axis=axis) for i in order]
