"""What an image, a mask and a volume are, and how each becomes a model-size tensor.

This module is the one place that holds the input rules; training (``data.tasks``), evaluation,
``SupportSet``, ``Predictor``, the CLI and the demo all call it, so the network meets the same input
whichever way an image arrives, and every error names the input it is about.

Images (:func:`prepare_image`), in this order:

1. Read (PNG/JPEG/TIFF/BMP/NPY/NIfTI file, NumPy array, torch tensor or PIL image) as stored.
2. Squeeze singleton axes; RGB -> grayscale by luminance ``0.299 R + 0.587 G + 0.114 B``. Files and
   PIL images in RGBA/LA/CMYK/palette modes are converted to RGB first; an array with 4 channels is
   refused (RGBA or 4 slices? say which: ``image[..., :3]`` or a volume function). With
   ``keep_rgb=True`` (:func:`image_array`, :func:`read_pairs`) RGB stays ``(H, W, 3)`` as stored, for
   the support set's colour projection (:mod:`universeg_plus.colour`, ``set_support(..., colour=)``).
3. Check: numeric, 2D, non-empty, finite (and within float32's range).
4. Resize to the model input size with antialiased bilinear interpolation (a tent filter widened by
   the down-sampling factor; plain bilinear when up-sampling), in float32.
5. Per-image min-max scaling of the resized image to [0, 1] (so every prepared image spans exactly
   0..1); an image that is constant before resizing becomes all zeros.

Masks (:func:`as_label_map`, :func:`prepare_mask`, :func:`resize_indicators`): binary (bool, {0, 1},
or {0, 255} as in 8-bit PNG masks, see :func:`binary_from_255`) or integer label maps
(0 = background), single-channel (a mask *file* saved as RGB with three equal channels is read as
one channel). At the public boundary a mask may hold at most :data:`MAX_LABELS` labels (more looks
like an image given as a mask; ``max_labels=`` raises the limit). Each label's indicator is resized
with the same antialiased bilinear filter as the images; a pixel takes the label with the largest
resized weight, ties going to the lower label (background first). For one binary indicator this is
"resized weight > 0.5", the rule training uses for every (label or label-group) task.

Volumes (:func:`volume_array`, :func:`read_input`): 3D ``(X, Y, Z)`` NIfTI or NPY data (trailing
singleton axes squeezed), segmented slice by slice along an axis.

Names: every function takes ``kind`` (the input's role: ``"image"``, ``"support mask"``,
``"target"``...) and ``where`` (its name: a file, ``"#3"``); messages read ``"<kind> <where> ..."``.
Wrap an input in :class:`Named` to give it the name its messages use (the demo names uploads by
their own file names, not by their temporary paths).

The rules live in one module each, re-exported here (import from here): :mod:`.checks` (names,
sizes, counts), :mod:`.image_rules`, :mod:`.mask_rules`, :mod:`.batches` (lists, stacks, pairs) and
:mod:`.input_files` (volumes and files to segment).
"""

from __future__ import annotations

from .batches import as_batch, prepare_pairs, read_pairs
from .checks import Named, as_count, check_size, describe
from .image_rules import (
    LUMA,
    as_image_2d,
    image_array,
    normalize_image,
    prepare_image,
    probabilities_to_size,
    resize_image,
    standardize_image,
    to_array,
)
from .input_files import InputFile, output_name, output_suffix, read_input, take_slice, volume_array
from .mask_rules import MAX_LABELS, MaskResize, as_label_map, binary_from_255, prepare_mask, resize_indicators

__all__ = [
    "LUMA",
    "MAX_LABELS",
    "InputFile",
    "MaskResize",
    "Named",
    "as_batch",
    "as_count",
    "as_image_2d",
    "as_label_map",
    "binary_from_255",
    "check_size",
    "describe",
    "image_array",
    "normalize_image",
    "output_name",
    "output_suffix",
    "prepare_image",
    "prepare_mask",
    "prepare_pairs",
    "read_input",
    "read_pairs",
    "resize_image",
    "probabilities_to_size",
    "resize_indicators",
    "standardize_image",
    "take_slice",
    "to_array",
    "volume_array",
]
