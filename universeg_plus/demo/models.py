"""The demo's networks: which models are offered, the default one, and a thread-safe cache of loaded networks.

The default model is the best one with trained weights
(:func:`universeg_plus.registry.default_model_name`); a model without weights is offered only when
named explicitly, and its results carry a warning that they are meaningless.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..devices import AUTO, resolve_device
from ..predictor import Predictor
from ..factory import create_model
from ..registry import PRETRAINED, list_models
from ..registry import default_model_name as registry_default_model_name

__all__ = [
    "ModelCache",
    "available_backends",
    "default_model_name",
    "has_pretrained",
    "offered_models",
    "weights_warning",
]

log = logging.getLogger(__name__)


def has_pretrained(name: str) -> bool:
    """Whether the pretrained-weights table declares weights for ``name``."""
    return name in PRETRAINED


def default_model_name(models: Sequence[str] | None = None) -> str:
    """The model selected at start: :func:`universeg_plus.registry.default_model_name` when it is among
    ``models`` (default: :func:`offered_models`), else the first of them with pretrained weights, else
    the first of them.

    Raises:
        ValueError: ``models`` is empty.
    """
    names = list(models) if models is not None else offered_models()
    if not names:
        raise ValueError("the demo needs at least one model name")
    best = registry_default_model_name()
    if best in names:
        return best
    return next((name for name in names if has_pretrained(name)), names[0])


def offered_models() -> list[str]:
    """The models the demo offers when none are named: those with pretrained weights (every registered
    name when none has weights). Others are offered only when named explicitly, with a warning."""
    return list_models(pretrained=True) or list_models()


def available_backends() -> list[str]:
    """``["eager"]``, plus ``"tvm"`` when Apache TVM is importable."""
    return ["eager", "tvm"] if importlib.util.find_spec("tvm") is not None else ["eager"]


def weights_warning(name: str) -> str | None:
    """The warning to show for ``name``, or ``None`` when it has pretrained weights."""
    if has_pretrained(name):
        return None
    return (
        f"No pretrained weights are declared for {name!r}: the network is randomly initialised, "
        "so its masks and Dice scores are meaningless (they only show that the pipeline runs)."
    )


def _load_network(name: str, backend: str, seed: int) -> Any:
    if has_pretrained(name):
        model = create_model(name, pretrained=True)
    else:
        log.warning("no pretrained weights are declared for %r: using a random network (seed %d)", name, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model(name)
    if backend == "tvm":  # compiled for the host CPU (the TVM default target), whatever the eager device
        return Predictor(model, backend="tvm").model
    return model.eval()


class ModelCache:
    """Networks loaded once per ``(name, backend)`` and reused across requests (thread-safe).

    Random networks (names without pretrained weights) are initialised from torch seed ``seed``, so
    ``torch.manual_seed(seed); create_model(name)`` rebuilds the same one.

    Args:
        models: The names that may be loaded (default: :func:`offered_models`, the models with
            pretrained weights; naming a model without weights here is the explicit ask for one).
        seed: Seed of random initialisation.
        device: Torch device of eager networks (default ``"auto"``: CUDA when available, else CPU).
        loader: ``loader(name, backend) -> network`` replacing the default (pretrained or seeded
            random weights, compiled for ``"tvm"``).
    """

    def __init__(
        self,
        models: Sequence[str] | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        loader: Callable[[str, str], Any] | None = None,
    ) -> None:
        self.models = list(models) if models is not None else offered_models()
        unknown = sorted(set(self.models) - set(list_models()))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; valid names: {', '.join(list_models())}")
        self.seed = int(seed)
        self.device = resolve_device(AUTO if device is None else device)
        self._loader = loader or (lambda name, backend: _load_network(name, backend, self.seed))
        self._networks: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, name: str, backend: str = "eager") -> Any:
        """The network for ``(name, backend)``, loading (and for TVM compiling) it on first use.

        Raises:
            ValueError: ``name`` is not one of :attr:`models`, or ``backend`` is not available.
        """
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(self.models)}")
        if backend not in available_backends():
            have = ", ".join(available_backends())
            raise ValueError(f"backend {backend!r} is not available here; choose one of: {have}")
        key = (name, backend)
        with self._lock:
            if key not in self._networks:
                start = time.perf_counter()
                self._networks[key] = self._loader(name, backend)
                self.loads += 1
                log.info("loaded %s (%s) in %.1f s", name, backend, time.perf_counter() - start)
            return self._networks[key]

    def predictor(self, name: str, backend: str = "eager") -> Predictor:
        """A fresh :class:`Predictor` around the cached network (no state shared between requests)."""
        network = self.get(name, backend)
        device = self.device if isinstance(network, torch.nn.Module) else None
        return Predictor(network, device=device)


