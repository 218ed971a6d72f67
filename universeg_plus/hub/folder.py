"""The pretrained-weights folder: ``model.safetensors`` + ``config.json`` + ``README.md`` model card,
plus ``model.safetensors.sha256`` (the weights' hash, checked on every load when present).

The same layout is used in the repo's ``weights/`` directory, in Hugging Face Hub repos, and by
:func:`save_pretrained` for users publishing fine-tuned weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._version import __version__
from ..config import ForwardMode, UniverSegConfig
from ..io.atomic import atomic_write_bytes
from .files import (
    load_state_dict_strict,
    read_config,
    read_weights,
    sha256_file,
    sha256_sidecar,
    verify_weights_file,
    write_sha256_sidecar,
    write_weights,
)

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "ModelClass",
    "SavedWeights",
    "WeightsModel",
    "write_model_files",
    "build_from_files",
    "config_json",
    "default_model_card",
    "load_folder",
    "save_pretrained",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"


class WeightsModel(Protocol):
    """What the hub needs of a network: its config and its tensors (``UniverSegPlus`` is one).

    The hub sits below the model class: functions that build a network take the class as an
    argument (``model_cls(config, mode=mode)``), as huggingface_hub's ``PyTorchModelHubMixin`` does,
    so ``hub/`` never imports ``model.py``.
    """

    config: UniverSegConfig

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: Mapping, strict: bool = True) -> Any: ...

    def num_parameters(self) -> int: ...


#: ``model_cls(config, mode=mode)``: the network class a builder makes (``UniverSegPlus``).
ModelClass = Callable[..., Any]


@dataclass(frozen=True)
class SavedWeights:
    """What :func:`save_pretrained` wrote.

    Attributes:
        directory: The folder.
        weights: ``directory / "model.safetensors"``.
        config: ``directory / "config.json"``.
        card: ``directory / "README.md"``.
        sha256: SHA-256 of the weights file (the value a pretrained-table entry pins).
        num_parameters: Parameter count of the saved model.
    """

    directory: Path
    weights: Path
    config: Path
    card: Path
    sha256: str
    num_parameters: int


def config_json(model: WeightsModel) -> str:
    """The model's config as the JSON text stored in ``config.json``."""
    return json.dumps(model.config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def write_model_files(model: WeightsModel, directory: str | os.PathLike) -> tuple[Path, Path, str]:
    """Write ``model.safetensors``, its ``.sha256`` sidecar and ``config.json`` into ``directory``.

    Each file is written atomically, overwriting. A stale sidecar is removed before the weights
    are replaced, so an interruption leaves weights with no recorded hash (loaded with a warning),
    never weights with the previous file's hash.

    Returns:
        ``(weights path, config path, sha256 of the weights file)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    meta = {"format": "pt", "library": "universeg_plus", "library_version": __version__, "config": config_json(model)}
    sha256_sidecar(weights).unlink(missing_ok=True)
    write_weights(model.state_dict(), weights, meta)
    digest = sha256_file(weights)
    write_sha256_sidecar(weights, digest)
    config = atomic_write_bytes(directory / CONFIG_NAME, config_json(model).encode())
    return weights, config, digest


def default_model_card(model: WeightsModel, sha256: str) -> str:
    """A minimal model card stating only what is known from the model itself."""
    cfg = json.dumps(model.config.model_dump(mode="json"), indent=2, sort_keys=True)
    return (
        "---\n"
        "library_name: universeg_plus\n"
        "tags:\n- medical-imaging\n- image-segmentation\n- in-context-learning\n- universeg\n"
        "---\n\n"
        "# UniverSeg-style in-context segmentation weights\n\n"
        f"- parameters: {model.num_parameters():,}\n"
        f"- input size (H, W): {tuple(model.config.input_size)}; images in [0, 1], support labels in {{0, 1}}\n"
        f"- `{WEIGHTS_NAME}` sha256: `{sha256}`\n\n"
        "```python\n"
        "from universeg_plus import UniverSegPlus\n\n"
        'model = UniverSegPlus.from_pretrained("<this folder or org/repo>")\n'
        "```\n\n"
        "## Config\n\n"
        f"```json\n{cfg}\n```\n"
    )


def save_pretrained(
    model: WeightsModel,
    directory: str | os.PathLike,
    model_card: str | Callable[[str], str] | None = None,
    overwrite: bool = False,
) -> SavedWeights:
    """Write ``model`` as a pretrained folder (each file atomically) and return its sha256.

    Args:
        model: The network to save (a ``UniverSegPlus``).
        directory: Target folder (created if needed).
        model_card: ``README.md`` text, or a function of the weights' sha256 returning it; a
            minimal generated card when ``None``.
        overwrite: Replace an existing ``model.safetensors`` in ``directory``.

    Raises:
        FileExistsError: ``directory`` already holds weights and ``overwrite`` is false.
        TypeError: ``model`` is not a network with a :class:`UniverSegConfig` (a ``UniverSegPlus``).
    """
    if not isinstance(getattr(model, "config", None), UniverSegConfig) or not hasattr(model, "state_dict"):
        raise TypeError(f"model must be a UniverSegPlus (a network with a UniverSegConfig), got {type(model).__name__}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    weights = directory / WEIGHTS_NAME
    if weights.exists() and not overwrite:
        raise FileExistsError(f"{weights} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    weights, config, digest = write_model_files(model, directory)
    if model_card is None:
        card_text = default_model_card(model, digest)
    else:
        card_text = model_card(digest) if callable(model_card) else model_card
    card = atomic_write_bytes(directory / CARD_NAME, card_text.encode())
    return SavedWeights(directory, weights, config, card, digest, model.num_parameters())


def load_folder(
    directory: str | os.PathLike,
    sha256: str | None = None,
    mode: ForwardMode = "split",
    weights_name: str = WEIGHTS_NAME,
    *,
    model_cls: ModelClass,
) -> Any:
    """Build a ``model_cls`` from a pretrained folder (config.json decides the architecture).

    ``UniverSegPlus.from_pretrained(folder)`` is this with ``model_cls=UniverSegPlus``.

    Args:
        directory: Folder holding ``config.json`` and the weights file.
        sha256: Expected SHA-256 of the weights file, checked before loading (as is the
            ``.sha256`` sidecar beside it, when there is one; with neither, a warning says so).
        mode: Forward form of the returned model.
        weights_name: Weights file name inside ``directory``.
        model_cls: The network class, called as ``model_cls(config, mode=mode)``.

    Raises:
        FileNotFoundError: missing folder, config or weights.
        ValueError: hash mismatch, corrupt file, invalid config, or weights that do not fit the config.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"weights folder {directory} does not exist")
    return build_from_files(directory / CONFIG_NAME, directory / weights_name, sha256, mode, str(directory), model_cls)


def build_from_files(
    config_path: Path, weights_path: Path, sha256: str | None, mode: ForwardMode, source: str, model_cls: ModelClass
) -> Any:
    """Verify (``sha256`` and the weights' ``.sha256`` sidecar), read and strictly load a config + weights pair."""
    config = read_config(config_path)
    if not weights_path.is_file():
        raise FileNotFoundError(f"weights file {weights_path} does not exist")
    verify_weights_file(weights_path, sha256, source)
    model = model_cls(config, mode=mode)
    load_state_dict_strict(model, read_weights(weights_path), f"{weights_path} (from {source})")
    return mark_weights_folder(model, config_path.parent)


def mark_weights_folder(model: Any, folder: Path) -> Any:
    """Set ``model.weights_folder``: where its weights were read from (files that belong to them, such
    as ``calibration.json``, are found there by the layers that use them)."""
    model.weights_folder = Path(folder)
    return model
