"""Import of the official UniverSeg checkpoint (``universeg_v1_nf64_ss64_STA.pt``) as safetensors."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import torch

from ..model import UniverSegPlus
from ..registry import get_config
from .files import load_state_dict_strict, sha256_file
from .folder import SavedWeights, save_pretrained

__all__ = ["OFFICIAL_MODEL", "convert_official", "load_official_state_dict"]

log = logging.getLogger(__name__)

OFFICIAL_MODEL = "universeg-v1"

_CARD = """---
library_name: universeg_plus
tags:
- medical-imaging
- image-segmentation
- in-context-learning
- universeg
---

# UniverSeg v1 (official weights, converted)

The official UniverSeg v1 checkpoint (Butoi et al., ICCV 2023), converted to safetensors by
`universeg-plus convert-official` from `{source}`. The tensors are unchanged; only the container
differs. Load with `UniverSegPlus.from_pretrained("<this folder>")`.

- architecture: `universeg-v1`, {params:,} parameters; input 128x128, images in [0, 1], support labels in {{0, 1}}
- `model.safetensors` sha256: `{sha256}`
- source checkpoint sha256: `{source_sha256}`

The weights were trained by the UniverSeg authors on the MegaMedical collection; see
https://github.com/JJGO/UniverSeg for their licence and the datasets' terms.

```bibtex
@inproceedings{{butoi2023universeg,
  title={{UniverSeg: Universal Medical Image Segmentation}},
  author={{Butoi, Victor Ion and Gonzalez Ortiz, Jose Javier and Ma, Tianyu and Sabuncu, Mert R and
            Guttag, John and Dalca, Adrian V}},
  booktitle={{International Conference on Computer Vision}},
  year={{2023}}
}}
```
"""


# torch.save writes a zip archive; before PyTorch 1.6 (and with _use_new_zipfile_serialization=False)
# a pickle of protocol >= 2, which starts with the PROTO opcode.
_CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")
_HEAD = 16


def _describe_head(head: bytes) -> str:
    if not head:
        return "an empty file"
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # the head may cut a character
    if "\ufffd" in text or not text:
        return f"binary data starting with {head[:8]!r}"
    return f"text starting with {text!r}"


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a PyTorch checkpoint with ``weights_only=True``: tensors only, no code is run.

    Accepts a flat state_dict or one nested under ``"state_dict"``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a PyTorch checkpoint (text, another format: names what it
            starts with), the pickle references anything but tensors and containers (refused,
            nothing executed), it is damaged, or it holds no state_dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    if not head.startswith(_CHECKPOINT_MAGIC):
        raise ValueError(
            f"{path} is not a PyTorch checkpoint: expected a file written by torch.save (a zip archive, "
            f"starting with b'PK\\x03\\x04', or a legacy pickle, starting with b'\\x80'), found "
            f"{_describe_head(head)}"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise ValueError(
            f"refusing to load {path}: it is not a plain tensor checkpoint (its pickle references Python objects "
            f"that could run code; nothing was executed). Detail: {detail.strip()}"
        ) from None
    except Exception as exc:  # the restricted unpickler fails on damaged input with KeyError, IndexError, ...
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        kind = type(obj).__name__ if not isinstance(obj, Mapping) else "a mapping with non-tensor values or no entries"
        raise ValueError(f"{path} does not hold a state_dict (a mapping of parameter names to tensors); found {kind}")
    return dict(obj)


def convert_official(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False
) -> SavedWeights:
    """Convert the official checkpoint into a pretrained folder (safetensors + config.json + README.md).

    The state_dict is loaded strictly into ``universeg-v1`` first, so a file for another
    architecture is rejected with the offending keys named.

    Args:
        checkpoint: The official ``.pt`` file (a torch.save'd state_dict).
        out_dir: Folder to write.
        overwrite: Replace weights already in ``out_dir``.

    Returns:
        What was written, including the new file's sha256.
    """
    state_dict = load_official_state_dict(checkpoint)
    model = UniverSegPlus(get_config(OFFICIAL_MODEL))
    load_state_dict_strict(model, state_dict, f"{checkpoint} (official checkpoint)")
    source_sha = sha256_file(checkpoint)
    card = partial(_CARD.format, source=Path(checkpoint).name, params=model.num_parameters(), source_sha256=source_sha)
    saved = save_pretrained(model, out_dir, model_card=lambda digest: card(sha256=digest), overwrite=overwrite)
    log.info("converted %s -> %s (sha256 %s)", checkpoint, saved.weights, saved.sha256)
    return saved
