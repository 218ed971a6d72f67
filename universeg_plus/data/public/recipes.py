"""Recipes: turn downloaded source files into task pairs (grayscale uint8 image, uint8 label map).

Shared rules (those of the project's task collection): images are converted to 8-bit grayscale
(Pillow ``L``: ITU-R 601-2 luma for RGB); a longer side above ``max_side`` is brought down to it
(image bilinear, mask nearest, sizes rounded); microscopy is tiled instead of shrunk. Each recipe
yields :class:`Pair` objects in the manifest's order.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .archives import deb_member, nifti_from_bytes, wheel_member

__all__ = ["RECIPES", "Pair", "decode_mask"]

#: Slicing axis of each plane in the stems ``<plane>_<index>`` of volume tasks (RAS voxel order).
PLANE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass
class Pair:
    """One image/mask pair: ``image`` (H, W) uint8, ``mask`` (H, W) uint8 label map (0 = background)."""

    stem: str
    image: np.ndarray
    mask: np.ndarray
    source: str
    source_shape: tuple[int, int]


def _open(data: bytes) -> Any:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _gray(img: Any) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max()
        return np.floor(np.clip(arr / hi, 0, 1) * 255).astype(np.uint8) if hi > 0 else np.zeros(arr.shape, np.uint8)
    return np.asarray(img.convert("L"))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Foreground plus every background region not 4-connected to the border (a filled outline)."""
    from PIL import Image, ImageDraw

    padded = Image.fromarray(np.pad(mask.astype(np.uint8), 1)).copy()  # fromarray may share a read-only buffer
    ImageDraw.floodfill(padded, (0, 0), 2)
    return np.asarray(padded)[1:-1, 1:-1] != 2


def _minority(gray: np.ndarray) -> np.ndarray:
    """Binary layer whose polarity is not documented: the less frequent of its two values is foreground."""
    values, counts = np.unique(gray, return_counts=True)
    if len(values) == 1:
        return np.zeros(gray.shape, bool)
    if len(values) > 2:
        gray = gray > 127
        values, counts = np.unique(gray, return_counts=True)
    return gray == values[int(np.argmin(counts))]


def decode_mask(img: Any, rule: Mapping[str, Any]) -> np.ndarray:
    """A source mask (Pillow image) -> ``(H, W)`` uint8 label map, by the manifest's rule.

    Rules: ``{"colours": [[[r, g, b], label], ...], "merge": {"2": 1}}`` (nearest colour among the
    listed ones and black, then labels merged), ``{"threshold": t}`` (gray > t is 1, optionally
    ``"fill_holes": true``), ``{"below": t}`` (gray < t is 1: dark foreground).

    Raises:
        ValueError: an unknown rule.
    """
    if "colours" in rule:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int32)
        palette = np.array([[0, 0, 0]] + [c for c, _ in rule["colours"]], dtype=np.int32)
        labels = np.array([0] + [int(lab) for _, lab in rule["colours"]], dtype=np.uint8)
        dist = ((rgb[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
        out = labels[np.argmin(dist, axis=-1)]
        for src, dst in (rule.get("merge") or {}).items():
            out[out == int(src)] = int(dst)
        return out
    gray = np.asarray(img.convert("L"))
    if "threshold" in rule:
        out = gray > int(rule["threshold"])
        return (_fill_holes(out) if rule.get("fill_holes") else out).astype(np.uint8)
    if "below" in rule:
        return (gray < int(rule["below"])).astype(np.uint8)
    raise ValueError(f"unknown mask rule {dict(rule)}")


def _resize(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    if image.shape == size:
        return image, mask
    wh = (size[1], size[0])
    return (
        np.asarray(Image.fromarray(image).resize(wh, Image.Resampling.BILINEAR)),
        np.asarray(Image.fromarray(mask).resize(wh, Image.Resampling.NEAREST)),
    )


def _fit(shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    h, w = shape[:2]
    if max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _check_shapes(stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    if image.shape != mask.shape:
        raise ValueError(f"pair {stem}: image is {image.shape[1]}x{image.shape[0]} but its mask "
                         f"{mask.shape[1]}x{mask.shape[0]} pixels")


Files = Callable[[str], bytes]  # path inside the source (repo file, wheel or package member) -> bytes


def pairs(entry: Mapping[str, Any], read: Files) -> Iterator[Pair]:
    """Image/mask file pairs (GitHub repositories): decode, convert, shrink to ``max_side``."""
    recipe = entry["recipe"]
    for p in entry["pairs"]:
        image = _gray(_open(read(p["image"])))
        mask = decode_mask(_open(read(p["mask"])), recipe["mask"])
        _check_shapes(p["stem"], image, mask)
        shape = image.shape
        image, mask = _resize(image, mask, _fit(shape, int(recipe.get("max_side", 256))))
        yield Pair(p["stem"], image, mask, f"{p['image']} + {p['mask']}", shape)


def tiles(entry: Mapping[str, Any], read: Files) -> Iterator[Pair]:
    """Tiles of large microscopy sections, optionally downsampled (EM stacks)."""
    recipe = entry["recipe"]
    size, down, rule = int(recipe["tile"]), int(recipe.get("downsample", 1)), recipe["mask"]
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p in entry["pairs"]:
        key = p["image"]
        if key not in cache:
            cache.clear()  # pairs of one section are consecutive
            image = _gray(_open(read(p["image"])))
            if "layers" in rule:
                mask = np.zeros(image.shape, np.uint8)
                for layer, label in rule["layers"]:  # later layers win where they overlap
                    sel = _minority(np.asarray(_open(read(p["mask"].format(layer=layer))).convert("L")))
                    mask[sel] = int(label)
            else:
                mask = decode_mask(_open(read(p["mask"])), rule)
            _check_shapes(p["stem"], image, mask)
            cache[key] = (image, mask)
        image, mask = cache[key]
        r, c = p["origin"]
        tile_img, tile_mask = image[r : r + size, c : c + size], mask[r : r + size, c : c + size]
        if tile_img.shape != (size, size):
            raise ValueError(f"pair {p['stem']}: tile at {r},{c} leaves the {image.shape} section")
        out_img, out_mask = _resize(tile_img, tile_mask, (size // down, size // down))
        where = f"crop [{r}:{r + size},{c}:{c + size}]" + (f" /{down}" if down > 1 else "")
        yield Pair(p["stem"], out_img, out_mask, f"{p['image']} + {p['mask']} {where}", tile_img.shape)


def stardist_tiles(entry: Mapping[str, Any], read: Files) -> Iterator[Pair]:
    """Tiles of the DSB 2018 image in the stardist wheel; intensities stretched between percentiles."""
    recipe = entry["recipe"]
    image = np.asarray(_open(read(recipe["image"])), dtype=np.float64)
    inst = np.asarray(_open(read(recipe["mask"])))
    lo, hi = np.percentile(image, recipe["percentiles"])
    stretched = np.floor(np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)
    size = int(recipe["tile"])
    for p in entry["pairs"]:
        r, c = p["origin"]
        yield Pair(p["stem"], stretched[r : r + size, c : c + size], (inst[r : r + size, c : c + size] > 0)
                   .astype(np.uint8), f"crop [{r}:{r + size},{c}:{c + size}]", (size, size))


def _volume_slice(volume: np.ndarray, stem: str) -> np.ndarray:
    plane, _, index = stem.partition("_")
    if plane not in PLANE_AXES or not index.isdigit():
        raise ValueError(f"stem {stem!r} is not <{'|'.join(PLANE_AXES)}>_<index>")
    return np.rot90(np.take(volume, int(index), axis=PLANE_AXES[plane]))


def _slice_source(stem: str) -> str:
    plane, _, index = stem.partition("_")
    return f"{plane} slice {int(index)}"


def mni152_tissue(entry: Mapping[str, Any], read: Files) -> Iterator[Pair]:
    """MNI152 2009a slices: 1 = p(GM) >= 0.5, 2 = p(WM) >= 0.5 (wins), 3 = rest of T1/max > 0.2."""
    files = entry["recipe"]["files"]
    t1, gm, wm = (np.asarray(nifti_from_bytes(read(files[k])).dataobj) for k in ("t1", "gm", "wm"))
    brain = t1.astype(np.float64) / float(t1.max()) > 0.2
    for p in entry["pairs"]:
        image = _volume_slice(t1, p["stem"]).astype(np.uint8)
        labels = np.zeros(image.shape, np.uint8)
        labels[_volume_slice(brain, p["stem"])] = 3
        labels[_volume_slice(gm, p["stem"]).astype(np.float64) / 255 >= 0.5] = 1
        labels[_volume_slice(wm, p["stem"]).astype(np.float64) / 255 >= 0.5] = 2
        yield Pair(p["stem"], np.ascontiguousarray(image), labels, _slice_source(p["stem"]), image.shape)


def atlas_slices(entry: Mapping[str, Any], read: Files) -> Iterator[Pair]:
    """Slices of a T1 volume and its atlas label volume; intensities stretched between percentiles
    of the non-zero voxels of the whole volume."""
    recipe = entry["recipe"]
    volume = np.asarray(nifti_from_bytes(read(recipe["image"])).dataobj, dtype=np.float64)
    atlas = np.asarray(nifti_from_bytes(read(recipe["labels"])).dataobj)
    if volume.shape != atlas.shape:
        raise ValueError(f"image volume {volume.shape} and label volume {atlas.shape} differ in shape")
    lo, hi = np.percentile(volume[volume > 0], recipe["percentiles"])
    for p in entry["pairs"]:
        sl = _volume_slice(volume, p["stem"])
        image = np.floor(np.clip((sl - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)
        labels = _volume_slice(atlas, p["stem"]).astype(np.uint8)
        yield Pair(p["stem"], image, np.ascontiguousarray(labels), _slice_source(p["stem"]), image.shape)


RECIPES: dict[str, Callable[[Mapping[str, Any], Files], Iterator[Pair]]] = {
    "pairs": pairs,
    "tiles": tiles,
    "stardist_tiles": stardist_tiles,
    "mni152_tissue": mni152_tissue,
    "atlas_slices": atlas_slices,
}
