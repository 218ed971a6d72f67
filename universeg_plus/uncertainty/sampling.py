"""Run a sampling plan through any engine: K probability maps per target at the model's grid.

The engine is a callable with the in-context contract on prepared tensors, so this module needs no
Predictor: ``engine(x (N, 1, h, w), support_images (S, 1, h, w), support_labels (S, 1, h, w))``
returns ``(N, h, w)`` foreground probabilities in [0, 1] (the Predictor passes its batched,
chunked forward; tests pass a tiny model wrapped by :func:`universeg_plus.inference.predict_probabilities`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .plan import SampleSpec

__all__ = ["AugmentedEngine", "Engine", "sample_probabilities"]

#: ``(targets (N, 1, h, w), support images (S, 1, h, w), support labels (S, 1, h, w)) -> (N, h, w)``.
Engine = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def sample_probabilities(
    engine: Engine,
    targets: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    plan: Sequence[SampleSpec],
) -> torch.Tensor:
    """Each view of ``plan`` through ``engine``, its geometry undone.

    Args:
        engine: See the module docstring.
        targets: ``(N, 1, h, w)`` float in [0, 1].
        support_images: ``(S, 1, h, w)`` float in [0, 1].
        support_labels: ``(S, 1, h, w)`` float in {0, 1}.
        plan: Views from :func:`~universeg_plus.uncertainty.plan.draw_plan` (indices < S).

    Returns:
        ``(K, N, h, w)`` float32 probabilities in [0, 1], sample-major, on the CPU.

    Raises:
        ValueError: an empty plan, or a view naming a support example that does not exist.
    """
    if not plan:
        raise ValueError("the sampling plan is empty: draw at least one sample")
    s = support_images.shape[0]
    out = []
    for spec in plan:
        if not spec.indices or max(spec.indices) >= s or min(spec.indices) < 0:
            raise ValueError(f"sample view uses support examples {spec.indices}, but the support set has {s}")
        idx = list(spec.indices)
        x = spec.augment_images(targets)
        si = spec.augment_images(support_images[idx])
        sl = spec.augment_labels(support_labels[idx])
        p = engine(x, si, sl)
        out.append(spec.invert(p.float().cpu()))
    return torch.stack(out)


class AugmentedEngine:
    """An engine object seen through one sample's augmentation (for inferers that call ``engine.probabilities``).

    Wraps any object with ``probabilities(targets, support_images, support_labels, subsets=None,
    flips=False) -> (N, h, w)`` (e.g. :class:`universeg_plus.inference.Engine`): the view's intensity
    and geometry are applied to the targets and the support tensors it is given (images and labels
    alike), and its geometry is undone on the output. Whatever covers the image (the whole image
    resized, or windows of it) thus sees the same augmentation on target and support. Other
    attributes are those of the wrapped engine.
    """

    def __init__(self, engine: object, spec: SampleSpec) -> None:
        self.engine = engine
        self.spec = spec

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def probabilities(
        self,
        targets: torch.Tensor,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
        subsets: Sequence[Sequence[int]] | None = None,
        flips: bool = False,
    ) -> torch.Tensor:
        """As the wrapped engine's, on the augmented inputs, geometry undone: ``(N, h, w)``."""
        spec = self.spec
        p = self.engine.probabilities(  # type: ignore[attr-defined]
            spec.augment_images(targets), spec.augment_images(support_images), spec.augment_labels(support_labels),
            subsets, flips,
        )
        return spec.invert(p)
