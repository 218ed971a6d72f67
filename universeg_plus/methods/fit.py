"""One segmentation method fitted to one binary support set: a function from targets to probabilities.

Every method sees the same tensors (the support set prepared at the model's input size) and gives
foreground probabilities for targets prepared the same way, so a caller (the Predictor, the
leave-one-out choice of :mod:`universeg_plus.methods.auto`) can swap them freely::

    fitted = fit_method("unet", model, images, masks, seed=0)   # trains here
    probs = fitted(targets)                                     # (N, 1, H, W) in [0, 1]

Methods (:data:`METHODS`):

- ``incontext``: the in-context network with the whole support set (nothing trained);
- ``ensemble``: the mean of the in-context network over 5 random halves of the support set;
- ``adapt``: a copy of the network fine-tuned on the support set (:func:`~universeg_plus.adapt.adapt_model`),
  then in-context with the whole set;
- ``unet``: a U-Net trained from scratch on the support set (:func:`~universeg_plus.supervised.train_baseline`);
- ``adapt+unet``: the mean of the two probability maps above.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..adapt import AdaptConfig, adapt_model, in_context_probabilities
from ..supervised import BaselineConfig, predict_baseline, train_baseline

__all__ = ["METHODS", "TRAINED", "Fitted", "MethodSettings", "fit_method"]

log = logging.getLogger(__name__)

#: The methods a support set can be segmented with, cheapest first.
METHODS = ("incontext", "ensemble", "adapt", "unet", "adapt+unet")
#: The methods that train a network on the support set (their cost is the training).
TRAINED = ("adapt", "unet", "adapt+unet")
#: Support subsets averaged by ``ensemble`` (each half of the set, at least one example).
ENSEMBLE_MEMBERS = 5


@dataclass(frozen=True)
class MethodSettings:
    """How the trained methods train.

    Attributes:
        adapt: Adaptation settings (default :class:`~universeg_plus.adapt.AdaptConfig`).
        unet: U-Net settings (default :class:`~universeg_plus.supervised.BaselineConfig`).
        progress: Progress bars while training.
    """

    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    unet: BaselineConfig = field(default_factory=BaselineConfig)
    progress: bool = False


@dataclass
class Fitted:
    """A method fitted to one support set.

    Attributes:
        method: Its name (one of :data:`METHODS`).
        predict: ``(N, 1, H, W)`` targets in [0, 1] -> ``(N, 1, H, W)`` foreground probabilities.
        seconds: Wall time of fitting (training; 0 for the in-context methods).
        parts: The fitted members of a combined method (``adapt+unet``: its ``adapt`` and ``unet``).
    """

    method: str
    predict: Callable[[torch.Tensor], torch.Tensor]
    seconds: float = 0.0
    parts: dict[str, Fitted] = field(default_factory=dict)

    def __call__(self, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.predict(targets)


def _ensemble(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, seed: int) -> Callable:
    n = images.shape[0]
    k = max(1, math.ceil(n / 2))
    g = torch.Generator().manual_seed(seed)
    members = [torch.randperm(n, generator=g)[:k] for _ in range(ENSEMBLE_MEMBERS if n > 1 else 1)]

    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([in_context_probabilities(model, x, images[m], masks[m]) for m in members]).mean(0)

    return predict


def fit_method(
    method: str,
    model: nn.Module | Callable[..., torch.Tensor],
    images: torch.Tensor,
    masks: torch.Tensor,
    settings: MethodSettings | None = None,
    *,
    seed: int = 0,
    fitted: dict[str, Fitted] | None = None,
) -> Fitted:
    """Fit ``method`` to the support set ``images, masks``.

    Args:
        method: One of :data:`METHODS`.
        model: The in-context network (an eager torch module for ``adapt``).
        images: ``(S, 1, H, W)`` float in [0, 1], at the model's input size.
        masks: ``(S, 1, H, W)`` float in {0, 1}.
        settings: Training settings of the trained methods.
        seed: Seeds training and the ensemble's subsets.
        fitted: Methods already fitted to this same support set, reused (``adapt+unet`` combines them).

    Raises:
        ValueError: an unknown method. TypeError: ``adapt`` of a model that is not a torch module.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    cfg = settings or MethodSettings()
    done = fitted or {}
    if method in done:
        return done[method]
    t0 = time.perf_counter()
    if method == "incontext":
        return Fitted(method, lambda x: in_context_probabilities(model, x, images, masks))
    if method == "ensemble":
        return Fitted(method, _ensemble(model, images, masks, seed))
    if method == "adapt":
        adapted = adapt_model(model, images, masks, cfg.adapt, seed=seed, progress=cfg.progress)
        return Fitted(method, lambda x: in_context_probabilities(adapted, x, images, masks), time.perf_counter() - t0)
    if method == "unet":
        net = train_baseline(images, masks, cfg.unet, seed=seed, progress=cfg.progress)
        return Fitted(method, lambda x: predict_baseline(net, x), time.perf_counter() - t0)
    a = fit_method("adapt", model, images, masks, cfg, seed=seed, fitted=done)
    u = fit_method("unet", model, images, masks, cfg, seed=seed, fitted=done)
    return Fitted(method, lambda x: 0.5 * (a.predict(x) + u.predict(x)), a.seconds + u.seconds, {"adapt": a, "unet": u})
