"""2D image files: read PNG/JPEG/TIFF/BMP/NPY (and 2D NIfTI slices), write PNG/NPY atomically.

Readers return NumPy arrays as stored: ``(H, W)`` or ``(H, W, C)``; no normalisation happens here
(that is :mod:`universeg_plus.io.inputs`). Writers never leave a half-written
file: they write a temporary file in the destination folder and ``os.replace`` it into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import UnreadableFile

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_NAME_SUFFIXES",
    "NIFTI_SUFFIXES",
    "UnreadableFile",
    "atomic_path",
    "file_stem",
    "is_volume",
    "label_colour",
    "list_image_files",
    "overlay_mask",
    "read_image",
    "write_image",
    "write_labels",
    "write_npy",
    "write_png",
]

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (*PIL_SUFFIXES, ".npy", *NIFTI_SUFFIXES)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def file_stem(path: str | os.PathLike) -> str:
    """The name without its image suffix (``a.nii.gz`` -> ``a``, ``b.png`` -> ``b``)."""
    p = Path(path)
    suffix = _suffix(p)
    return p.name[: len(p.name) - len(suffix)] if suffix else p.name


def is_volume(arr: np.ndarray, path: str | os.PathLike | None = None) -> bool:
    """Whether data read from ``path`` is a 3D volume rather than a 2D image with a channel axis.

    A singleton axis first or last means a 2D image; a last axis of 3 or 4 means RGB(A), except in
    NIfTI files (never RGB here).
    """
    if arr.ndim > 3:
        return True
    if arr.ndim < 3 or 1 in (arr.shape[0], arr.shape[-1]):
        return False
    nifti = path is not None and Path(path).name.lower().endswith(NIFTI_SUFFIXES)
    return nifti or arr.shape[-1] not in (3, 4)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Readable image/volume files in ``folder`` (not recursive, hidden files skipped), sorted by name.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    return sorted(
        p for p in root.iterdir() if p.is_file() and not p.name.startswith(".") and _suffix(p) in IMAGE_SUFFIXES
    )


MASK_NAME_SUFFIXES = ("_mask", "_seg", "_label", "_gt")


def _image_stem_of(mask_stem: str, image_stems: set[str]) -> str | None:
    """The image stem a mask stem belongs to: the same, or it plus a mask suffix (``scan1_mask``)."""
    if mask_stem in image_stems:
        return mask_stem
    low = mask_stem.lower()
    for suffix in MASK_NAME_SUFFIXES:
        if low.endswith(suffix) and mask_stem[: -len(suffix)] in image_stems:
            return mask_stem[: -len(suffix)]
    return None


def paired_files(images_dir: str | os.PathLike, masks_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """``(stem, image, mask)`` for every image of ``images_dir`` and its mask, paired by file stem.

    A mask pairs with the image of the same stem (``scan1.png`` / ``scan1.png``) or of its stem
    without one of :data:`MASK_NAME_SUFFIXES` (``scan1_mask.png``, ``scan1_seg.png``,
    ``scan1_label.png``, ``scan1_gt.png``; any case).

    Raises:
        FileNotFoundError: a folder is missing.
        ValueError: no image files, two masks for one image, or files without a partner (listed,
            with how to name them).
    """
    imgs = {file_stem(p): p for p in list_image_files(images_dir)}
    if not imgs:
        raise ValueError(f"no image files in {images_dir}")
    stems = set(imgs)
    msks: dict[str, Path] = {}
    lonely_masks = []
    for path in list_image_files(masks_dir):
        stem = _image_stem_of(file_stem(path), stems)
        if stem is None:
            lonely_masks.append(file_stem(path))
        elif stem in msks:
            raise ValueError(
                f"image {imgs[stem].name} in {images_dir} has two masks in {masks_dir}: "
                f"{msks[stem].name} and {path.name}; keep one"
            )
        else:
            msks[stem] = path
    lonely = sorted(stems - set(msks)) + sorted(lonely_masks)
    if lonely:
        shown = ", ".join(lonely[:5]) + (" ..." if len(lonely) > 5 else "")
        raise ValueError(
            f"{len(lonely)} file(s) in {images_dir} / {masks_dir} have no partner: {shown}. Name each mask "
            f"like its image (scan1.png -> scan1.png) or add {', '.join(MASK_NAME_SUFFIXES)} "
            "(scan1.png -> scan1_mask.png)"
        )
    return [(stem, imgs[stem], msks[stem]) for stem in sorted(imgs)]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image or volume file as stored.

    PNG/JPEG/TIFF/BMP through Pillow (palette and 16-bit modes kept as values, RGBA dropped to RGB),
    ``.npy`` through NumPy (no pickles), NIfTI through nibabel (``get_fdata`` for scaled data,
    the raw integer array for unscaled integer data).

    Returns:
        ``(H, W)``, ``(H, W, C)`` or, for volumes, ``(X, Y, Z)`` array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unsupported suffix or unreadable file (the message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    suffix = _suffix(p)
    if suffix in NIFTI_SUFFIXES:
        from .nifti import read_nifti

        return read_nifti(p)[0]
    if suffix not in IMAGE_SUFFIXES:
        raise UnreadableFile(p, f"unsupported file type {suffix!r}; expected one of {', '.join(IMAGE_SUFFIXES)}")
    if suffix in PIL_SUFFIXES:
        return _read_pil(p)
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        raise UnreadableFile(p, str(exc)) from exc
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise UnreadableFile(p, f"expected a numeric array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


def _read_pil(p: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow is a core dependency
        raise ImportError('reading images needs Pillow: pip install "universeg-plus"') from exc
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode == "P" and _palette_is_colour(img):
                img = img.convert("RGB")  # grey palettes keep their indices (label maps)
            if img.mode in ("RGBA", "LA", "CMYK", "YCbCr", "HSV", "PA"):
                img = img.convert("RGB" if img.mode != "LA" else "L")
            arr = np.array(img)
    except Exception as exc:  # Pillow raises many types for corrupt files
        raise UnreadableFile(p, str(exc)) from exc
    if arr.dtype.kind not in "biuf":
        raise UnreadableFile(p, f"expected numeric pixels, got dtype {arr.dtype}")
    return arr


def _palette_is_colour(img) -> bool:
    pal = np.asarray(img.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    used = pal[: int(np.asarray(img).max()) + 1] if len(pal) else pal
    return bool(len(used) and not (np.all(used[:, 0] == used[:, 1]) and np.all(used[:, 1] == used[:, 2])))


def _check_array(array: np.ndarray, name: str) -> np.ndarray:
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    return array


def write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``(H, W)`` or ``(H, W, 3|4)`` uint8/uint16/bool data as PNG, atomically.

    Integer values are written as they are (a label map stays a label map); floats must already be
    in [0, 1] and are scaled to 0..255.

    Raises:
        ValueError: wrong shape, or values that do not fit the PNG's 8/16-bit range.
    """
    from PIL import Image

    arr = _check_array(array, "array")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise ValueError(f"PNG data must have shape (H, W) or (H, W, 3|4), got {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError("float PNG data must be finite and in [0, 1]")
        arr = np.round(arr * 255).astype(np.uint8)
    elif arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ValueError(f"integer PNG data must be in [0, 65535], got [{arr.min()}, {arr.max()}]")
    elif arr.size and arr.max() > 255:
        if arr.ndim != 2:
            raise ValueError("16-bit PNG data must be single-channel (H, W)")
        arr = arr.astype(np.uint16)
    else:
        arr = arr.astype(np.uint8)
    dest = Path(path)
    with atomic_path(dest) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return dest


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write any numeric array as ``.npy``, atomically."""
    arr = _check_array(array, "array")
    dest = Path(path)
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    return dest


def write_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write by suffix: ``.png`` (:func:`write_png`) or ``.npy`` (:func:`write_npy`)."""
    suffix = _suffix(Path(path))
    if suffix == ".png":
        return write_png(path, array)
    if suffix == ".npy":
        return write_npy(path, array)
    raise ValueError(f"cannot write {path}: unsupported suffix {suffix!r} (use .png or .npy; NIfTI: write_nifti)")


def write_labels(path: str | os.PathLike, labels: np.ndarray, reference: Any | None = None) -> Path:
    """Write an integer label map or volume by suffix, atomically.

    ``.png`` (2D, values as they are), ``.npy``, or ``.nii``/``.nii.gz`` (through
    :func:`universeg_plus.io.nifti.write_label_nifti`, keeping ``reference``'s affine and header;
    ``labels`` is reshaped to the reference's shape, so a 2D map fits an ``(X, Y, 1)`` volume).

    Raises:
        ValueError: unsupported suffix, or labels that do not fit the format.
    """
    if Path(path).name.lower().endswith(NIFTI_SUFFIXES):
        from .nifti import write_label_nifti

        lab = np.asarray(labels)
        if reference is not None and lab.size == int(np.prod(reference.shape)):
            lab = lab.reshape(reference.shape)
        return write_label_nifti(path, lab, reference)
    return write_image(path, labels)


_COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240]],
    dtype=np.float64,
)


def label_colour(label: int) -> tuple[int, int, int]:
    """The RGB colour :func:`overlay_mask` paints ``label`` (>= 1) with (colours repeat after 7 labels)."""
    if int(label) < 1:
        raise ValueError(f"label must be >= 1 (0 is background), got {label}")
    r, g, b = _COLOURS[(int(label) - 1) % len(_COLOURS)]
    return int(r), int(g), int(b)


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Colour a label map over an image for viewing.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)``, any numeric range (min-max scaled for display).
        mask: ``(H, W)`` integer label map, 0 = background.
        alpha: Opacity of the colour, in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    img = np.asarray(image, dtype=np.float64)
    m = np.asarray(mask)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3]
    elif img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    else:
        raise ValueError(f"image must have shape (H, W) or (H, W, 3), got {img.shape}")
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match image shape {img.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    lo, hi = float(img.min()), float(img.max())
    rgb = (img - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(img)
    for label in np.unique(m):
        if label == 0:
            continue
        sel = m == label
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(label_colour(int(label)), dtype=np.float64)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
