"""Pretrained weights: the folder format, shipped weights, Hugging Face Hub download/publishing, the
official release (downloaded once, verified, converted), and the mixin that gives the network class
its ``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` methods.

Layering: this package depends on ``config``, ``registry`` (data) and ``io`` only. It never imports
the network class: builders take it as ``model_cls`` (huggingface_hub's ``PyTorchModelHubMixin``
pattern), and ``model.UniverSegPlus`` inherits :class:`~universeg_plus.hub.mixin.PretrainedMixin`.

One concern per module: ``files`` (safetensors I/O, hashes, strict loading), ``folder`` (the
config.json + model.safetensors + README.md layout), ``shipped`` (weights on disk), ``download``
(the hub), ``url`` (a pinned file over HTTP), ``cache`` (the user cache folder), ``official`` (the
official checkpoint), ``pretrained`` (resolving a table entry or a repo id), ``mixin``.
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
from .cache import CACHE_ENV, user_cache_dir
from .folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, SavedWeights, load_folder, save_pretrained
from .mixin import PretrainedMixin
from .official import convert_official, fetch_official, load_official_state_dict, official_cache_folder
from .pretrained import fetch_pretrained, from_pretrained, load_pretrained_weights, resolve_pretrained_files
from .shipped import WEIGHTS_DIR_ENV, find_shipped_weights, shipped_weights_dirs

__all__ = [
    "CACHE_ENV",
    "CARD_NAME",
    "CONFIG_NAME",
    "SHA256_SUFFIX",
    "WEIGHTS_DIR_ENV",
    "WEIGHTS_NAME",
    "HubFile",
    "PretrainedMixin",
    "PushResult",
    "SavedWeights",
    "check_sha256",
    "convert_official",
    "download_file",
    "fetch_official",
    "fetch_pretrained",
    "find_shipped_weights",
    "from_pretrained",
    "load_folder",
    "load_official_state_dict",
    "load_pretrained_weights",
    "official_cache_folder",
    "load_state_dict_strict",
    "push_to_hub",
    "read_config",
    "read_sha256_sidecar",
    "read_weights",
    "resolve_pretrained_files",
    "save_pretrained",
    "sha256_file",
    "user_cache_dir",
    "verify_weights_file",
    "shipped_weights_dirs",
]
