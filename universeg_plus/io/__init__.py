"""Reading and writing images and volumes (atomic writes)."""

from .atomic import atomic_path, atomic_write_bytes, atomic_write_text, clean_stale_partials
from .images import (
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    file_stem,
    is_volume,
    list_image_files,
    overlay_mask,
    read_image,
    write_image,
    write_labels,
    write_npy,
    write_png,
)
from .nifti import label_dtype, read_nifti, volume_slices, write_label_nifti, write_nifti

__all__ = [
    "IMAGE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_partials",
    "file_stem",
    "is_volume",
    "label_dtype",
    "list_image_files",
    "overlay_mask",
    "read_image",
    "read_nifti",
    "volume_slices",
    "write_image",
    "write_label_nifti",
    "write_labels",
    "write_nifti",
    "write_npy",
    "write_png",
]
