"""Building models by name, with or without their pretrained weights.

Sits above ``hub/`` (which it calls to fetch and verify weights, handing it the network class) and
above ``registry`` (names, configs and the pretrained table, data only); ``universeg_plus.create_model``
is :func:`create_model`, and ``universeg_plus.from_pretrained`` / ``convert_official`` are the hub's
builders bound to :class:`~universeg_plus.model.UniverSegPlus`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from .hub.folder import SavedWeights
from .hub.official import convert_official as _convert_official
from .hub.pretrained import load_pretrained_weights
from .model import ForwardMode, UniverSegPlus
from .registry import PRETRAINED, default_model_name, get_config, list_models, list_pretrained

__all__ = ["convert_official", "create_model", "from_pretrained", "load_model"]

log = logging.getLogger(__name__)


def create_model(
    name: str, pretrained: bool | Literal["auto"] = False, mode: ForwardMode = "split", **overrides: Any
) -> UniverSegPlus:
    """Build a registered variant.

    Args:
        name: A name from :func:`universeg_plus.list_models`; ``universeg_plus.default_model_name()``
            is the best one with pretrained weights.
        pretrained: Load the weights declared for ``name`` in the pretrained table (shipped copy
            first where the table says so, else the Hugging Face Hub), checking their sha256.
            ``"universeg-v1"``: the official weights, downloaded once from the authors' release into
            the user cache, checked against the pinned git blob id, converted to safetensors there,
            and loaded offline afterwards.
            ``"auto"``: load them when the table declares them (and no override is given), else
            log a warning and return the randomly initialised network.
        mode: Forward form, ``"split"`` (fast, default) or ``"pairwise"`` (official).
        **overrides: Config fields to change (not allowed with ``pretrained=True``).

    Raises:
        ValueError: unknown name, invalid override, or no pretrained weights for ``name``.
        FileNotFoundError: the declared weights are neither shipped, cached nor downloadable (the
            message names the address, the cache folder and the ways out).
    """
    config = get_config(name, **overrides)
    model = UniverSegPlus(config, mode=mode)
    if pretrained == "auto":
        pretrained = name in PRETRAINED and not overrides
        if name not in PRETRAINED:
            log.warning("no pretrained weights are declared for %r: the model is randomly initialised", name)
        elif overrides:
            log.warning(
                "config overrides %s do not fit the pretrained weights of %r: the model is randomly initialised",
                sorted(overrides), name,
            )
    if pretrained:
        if overrides:
            raise ValueError(f"config overrides {sorted(overrides)} cannot be combined with pretrained=True")
        if name not in PRETRAINED:
            have = ", ".join(list_pretrained()) or "none"
            raise ValueError(f"no pretrained weights are declared for {name!r}; names with weights: {have}")
        load_pretrained_weights(model, PRETRAINED[name])
    return model


def from_pretrained(source: str | os.PathLike, revision: str | None = None, **kwargs: Any) -> UniverSegPlus:
    """:meth:`UniverSegPlus.from_pretrained`: a folder, a pretrained-table name or a hub repo id."""
    return UniverSegPlus.from_pretrained(source, revision, **kwargs)


def convert_official(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False
) -> SavedWeights:
    """The official UniverSeg ``.pt`` checkpoint as a safetensors folder (see :func:`universeg_plus.hub.convert_official`)."""
    return _convert_official(checkpoint, out_dir, overwrite, model_cls=UniverSegPlus)


def load_model(model: str | os.PathLike | None = None, *, pretrained: bool | None = None) -> UniverSegPlus:
    """The model a user names: a registered name, a weights folder, or ``None`` for the default.

    Args:
        model: ``None`` for :func:`universeg_plus.registry.default_model_name` (the best model with
            trained weights); a registered name (loaded with its pretrained weights); or an existing
            folder holding ``config.json`` and weights (:func:`universeg_plus.hub.load_folder`).
        pretrained: For a name: ``None`` (default) loads its weights and refuses a name that has none
            (its masks would be noise); ``True`` loads them (error if none); ``False`` builds it with
            random weights, with a warning. Not allowed with a folder (a folder is its weights).

    Returns:
        The model, in eval mode, on the CPU.

    Raises:
        TypeError: ``pretrained`` not ``True``/``False``/``None``, or ``pretrained=False`` with a folder.
        ValueError: an unknown name (the valid ones and folders are named), a name without weights.
        FileNotFoundError: a ``Path`` that is no folder; declared weights that are neither shipped nor
            downloadable.
    """
    if pretrained is not None and not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be True, False or None, got {pretrained!r}")
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a registered name or a weights folder, got {type(model).__name__}")
    if model is not None and (isinstance(model, os.PathLike) or model not in list_models()) and Path(model).is_dir():
        if pretrained is False:
            raise TypeError(f"pretrained=False applies to a model name; {model} is a weights folder")
        from .hub.folder import load_folder  # imported here so that `import universeg_plus` skips hub/

        log.info("model from the weights folder %s", model)
        return load_folder(model, model_cls=UniverSegPlus).eval()
    if isinstance(model, os.PathLike):
        raise FileNotFoundError(f"weights folder {model} does not exist")
    name = default_model_name() if model is None else str(model)
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())} (or a weights folder)")
    with_weights = list_models(pretrained=True)
    if pretrained is None and name not in with_weights:
        raise ValueError(
            f"model {name!r} has no pretrained weights, so its masks would be noise; models with weights: "
            f"{', '.join(with_weights) or 'none'}. To use {name!r} with random weights anyway, pass "
            "pretrained=False (CLI: --random-weights)"
        )
    if pretrained is False:
        log.warning("%r is randomly initialised (pretrained=False): its masks are meaningless", name)
    else:
        log.info("model %r with its pretrained weights", name)
    return create_model(name, pretrained=pretrained is not False).eval()
