"""Pretrained weights: the folder format, shipped weights, Hugging Face Hub download/publishing, official import.

One concern per module: ``files`` (safetensors I/O, hashes, strict loading), ``folder`` (the
config.json + model.safetensors + README.md layout), ``shipped`` (weights on disk), ``download``
(the hub), ``pretrained`` (resolving a table entry or a repo id), ``official`` (the official checkpoint).
huggingface_hub is imported only when the hub is actually used.
"""

from __future__ import annotations

from .download import HubFile, PushResult, download_file, push_to_hub
from .files import (
    SHA256_SUFFIX,
    check_sha256,
    load_state_dict_strict,
    read_config,
    read_sha256_sidecar,
    read_weights,
    sha256_file,
    verify_weights_file,
)
from .folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, SavedWeights, load_folder, save_pretrained
from .official import convert_official, load_official_state_dict
from .pretrained import fetch_pretrained, from_pretrained, load_pretrained_weights, resolve_pretrained_files
from .shipped import WEIGHTS_DIR_ENV, find_shipped_weights, shipped_weights_dirs

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "SHA256_SUFFIX",
    "WEIGHTS_DIR_ENV",
    "WEIGHTS_NAME",
    "HubFile",
    "PushResult",
    "SavedWeights",
    "check_sha256",
    "convert_official",
    "download_file",
    "fetch_pretrained",
    "find_shipped_weights",
    "from_pretrained",
    "load_folder",
    "load_official_state_dict",
    "load_pretrained_weights",
    "load_state_dict_strict",
    "push_to_hub",
    "read_config",
    "read_sha256_sidecar",
    "read_weights",
    "resolve_pretrained_files",
    "save_pretrained",
    "sha256_file",
    "verify_weights_file",
    "shipped_weights_dirs",
]
