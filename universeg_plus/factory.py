"""Building models by name, with or without their pretrained weights.

Sits above ``hub/`` (which it calls to fetch and verify weights) and above ``registry`` (names,
configs and the pretrained table, data only); ``universeg_plus.create_model`` is this function.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from .model import ForwardMode, UniverSegPlus
from .registry import PRETRAINED, get_config, list_pretrained

__all__ = ["create_model"]

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
            ``"auto"``: load them when the table declares them (and no override is given), else
            log a warning and return the randomly initialised network.
        mode: Forward form, ``"split"`` (fast, default) or ``"pairwise"`` (official).
        **overrides: Config fields to change (not allowed with ``pretrained=True``).

    Raises:
        ValueError: unknown name, invalid override, or no pretrained weights for ``name``.
        FileNotFoundError: the declared weights are neither shipped nor downloadable.
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
        # imported here so that `import universeg_plus` does not load the hub package
        from .hub.pretrained import load_pretrained_weights

        load_pretrained_weights(model, PRETRAINED[name])
    return model
