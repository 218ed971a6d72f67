"""The official UniverSeg checkpoint (``universeg_v1_nf64_ss64_STA.pt``): read as tensors only, converted
to a safetensors folder, and fetched once from the authors' release into the user cache.

The cache holds the converted folder ``<cache>/<model>-<git blob id[:12]>/`` (``model.safetensors``
+ ``.sha256`` + ``config.json`` + ``README.md`` + ``source.json``, which records the URL, size, git
blob id and SHA-256 of the checkpoint that was verified). The ``.pt`` itself is not kept.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import torch

from ..io.atomic import atomic_write_text
from ..io.hashing import git_blob_id
from ..registry import PRETRAINED, PretrainedEntry, get_config
from .cache import CACHE_ENV, user_cache_dir
from .files import load_state_dict_strict, read_sha256_sidecar, sha256_file, verify_weights_file
from .folder import CONFIG_NAME, WEIGHTS_NAME, ModelClass, SavedWeights, save_pretrained
from .url import DownloadError, download_pinned, offline_reason

__all__ = [
    "OFFICIAL_MODEL",
    "SOURCE_NAME",
    "convert_official",
    "fetch_official",
    "load_official_state_dict",
    "official_cache_folder",
]

log = logging.getLogger(__name__)

OFFICIAL_MODEL = "universeg-v1"
#: What a converted folder records about the checkpoint it came from.
SOURCE_NAME = "source.json"

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
- source checkpoint sha256: `{source_sha256}`, git blob id `{source_blob}` ({release})

The weights were trained by the UniverSeg authors on the MegaMedical collection. Licence: {license}.

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


def _official_entry() -> PretrainedEntry | None:
    return PRETRAINED.get(OFFICIAL_MODEL)


def convert_official(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    *,
    model_cls: ModelClass,
    url: str | None = None,
) -> SavedWeights:
    """Convert the official checkpoint into a pretrained folder (safetensors + config.json + README.md + source.json).

    The checkpoint is read with ``torch.load(weights_only=True)`` (no code runs) and loaded strictly
    into ``universeg-v1`` first, so a file for another architecture is rejected with the offending
    keys named. ``source.json`` records the checkpoint's size, git blob id and SHA-256, and whether
    the blob id is the pinned official release's (a loader of ``universeg-v1`` accepts the folder only then).

    Args:
        checkpoint: The official ``.pt`` file (a torch.save'd state_dict).
        out_dir: Folder to write.
        overwrite: Replace weights already in ``out_dir``.
        model_cls: The network class (``UniverSegPlus``), built as ``model_cls(config)``.
        url: Where the checkpoint was downloaded from, recorded in ``source.json``.

    Returns:
        What was written, including the new file's sha256.
    """
    state_dict = load_official_state_dict(checkpoint)
    model = model_cls(get_config(OFFICIAL_MODEL))
    load_state_dict_strict(model, state_dict, f"{checkpoint} (official checkpoint)")
    source_sha, source_blob = sha256_file(checkpoint), git_blob_id(checkpoint)
    entry = _official_entry()
    pinned = entry.git_blob_id if entry is not None else None
    matches = pinned is not None and source_blob == pinned
    if pinned is not None and not matches:
        log.warning(
            "%s has git blob id %s, not the official release's %s: it is converted, but loading %r with "
            "pretrained weights will not use this folder", checkpoint, source_blob, pinned, OFFICIAL_MODEL,
        )
    card = partial(
        _CARD.format, source=Path(checkpoint).name, params=model.num_parameters(), source_sha256=source_sha,
        source_blob=source_blob, release="the official release" if matches else "NOT the pinned official release",
        license=entry.license if entry is not None else "see https://github.com/JJGO/UniverSeg",
    )
    saved = save_pretrained(model, out_dir, model_card=lambda digest: card(sha256=digest), overwrite=overwrite)
    record = {
        "file": Path(checkpoint).name,
        "url": url,
        "size": os.path.getsize(checkpoint),
        "git_blob_id": source_blob,
        "sha256": source_sha,
        "official_release": matches,
        "weights_sha256": saved.sha256,
    }
    atomic_write_text(saved.directory / SOURCE_NAME, json.dumps(record, indent=2) + "\n")
    log.info("converted %s -> %s (sha256 %s)", checkpoint, saved.weights, saved.sha256)
    return saved


def official_cache_folder(entry: PretrainedEntry, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted weights of a URL entry live: ``<user cache>/<model>-<git blob id[:12]>``."""
    return user_cache_dir(cache_dir) / f"{entry.model}-{entry.git_blob_id[:12]}"


def _check_cached(folder: Path, entry: PretrainedEntry) -> None:
    """Accept a cached folder only if it was converted from the pinned file and its weights still hash
    to what was recorded; else delete it and raise ``ValueError`` naming it."""
    weights = folder / WEIGHTS_NAME
    try:
        try:
            record = json.loads((folder / SOURCE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        if not isinstance(record, dict) or record.get("git_blob_id") != entry.git_blob_id:
            found = record.get("git_blob_id") if isinstance(record, dict) else f"no readable {SOURCE_NAME}"
            raise ValueError(
                f"{folder} was not converted from the pinned {entry.model} checkpoint (git blob id "
                f"{entry.git_blob_id}; found {found})"
            )
        if read_sha256_sidecar(weights) is None or record.get("weights_sha256") != read_sha256_sidecar(weights):
            raise ValueError(f"{weights} has no sha256 recorded at conversion")
        verify_weights_file(weights, record["weights_sha256"], f"cached {entry.model}")
        if not (folder / CONFIG_NAME).is_file():
            raise ValueError(f"{folder / CONFIG_NAME} is missing")
    except ValueError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(
            f"refused the cached {entry.model} weights: {exc}. The folder {folder} was deleted; the next "
            "load downloads and verifies them again."
        ) from None


def _unavailable(entry: PretrainedEntry, url: str, folder: Path, why: str) -> str:
    """Why the weights are missing and what a command-line user and a Python user can do about it."""
    name = Path(urlsplit(entry.url).path).name
    mirror = (
        f"  3. set {entry.url_env} to a mirror of the file (an https:// address, or file:///path/to/{name}); "
        f"it is still checked against the pinned git blob id {entry.git_blob_id}.\n"
        if entry.url_env
        else ""
    )
    return (
        f"the {entry.model} weights are not in the cache ({folder}) and could not be downloaded from {url}: "
        f"{why}.\nWays out:\n"
        f"  1. while online, run `universeg-plus download {entry.model}` once (or load it once from Python); "
        "every later run finds it in the cache, offline too.\n"
        f"  2. download {name} where there is internet access ({entry.url}), copy it here and run\n"
        f"     universeg-plus convert-official {name} {folder}\n"
        + mirror
        + f"The cache folder is {user_cache_dir()}: set {CACHE_ENV} to use another, for every command "
        "(in Python, the cache_dir= keyword of universeg_plus.from_pretrained does it for one call)."
    )


def fetch_official(
    entry: PretrainedEntry,
    model_cls: ModelClass,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> Path:
    """The converted folder of a URL entry: from the cache, else downloaded once, verified and converted.

    The download comes from ``$<entry.url_env>`` when set (a mirror), else ``entry.url``; either way
    the file must have the entry's git blob id (and size, when pinned) and is read as tensors only.
    The licence is logged (WARNING) the first time the weights are downloaded.

    Returns:
        The folder holding ``config.json`` + ``model.safetensors`` (+ ``.sha256``, ``README.md``, ``source.json``).

    Raises:
        FileNotFoundError: not cached and no download possible (offline, blocked, HTTP error): names the
            URL, the cache folder and the ways out.
        ValueError: the download or the cached copy is not the pinned file (it is deleted and named).
    """
    if entry.url is None or entry.git_blob_id is None:
        raise ValueError(f"pretrained entry for {entry.model!r} declares no url to fetch")
    folder = official_cache_folder(entry, cache_dir)
    if not force_download and ((folder / WEIGHTS_NAME).is_file() or (folder / SOURCE_NAME).is_file()):
        _check_cached(folder, entry)
        return folder
    url = (os.environ.get(entry.url_env, "").strip() if entry.url_env else "") or entry.url
    why = offline_reason(local_files_only)
    if why is not None:
        raise FileNotFoundError(_unavailable(entry, url, folder, why))
    source = folder / Path(urlsplit(entry.url).path).name
    try:
        got = download_pinned(url, source, entry.git_blob_id, entry.size)
    except DownloadError as exc:
        raise FileNotFoundError(_unavailable(entry, url, folder, str(exc))) from None
    try:
        convert_official(source, folder, overwrite=True, model_cls=model_cls, url=url)
    finally:
        source.unlink(missing_ok=True)
    log.warning(
        "downloaded the %s weights (%s, %d bytes, git blob %s, sha256 %s) into %s. Licence: %s. Cite: %s",
        entry.model, got.url, got.size, got.git_blob_id, got.sha256, folder, entry.license, entry.citation,
    )
    return folder
