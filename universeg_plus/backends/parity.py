"""Parity of a compiled model with eager PyTorch fp32, on random and on real-looking inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data.synthetic import SyntheticTaskGenerator
from .export import example_inputs

__all__ = ["PARITY_TOLERANCE", "ParityReport", "check_parity", "parity_inputs"]

PARITY_TOLERANCE = 1e-4  # max |delta logit| every level must meet against eager fp32


@dataclass
class ParityReport:
    """Max |compiled - eager| logit per case (``"random S=3"``, ``"synthetic S=3"``)."""

    max_abs_diff: dict[str, float] = field(default_factory=dict)
    tolerance: float = PARITY_TOLERANCE

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst <= self.tolerance


def parity_inputs(
    kind: str, batch_size: int, support_size: int, image_size: tuple[int, int], seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Model inputs of one kind: ``"random"`` (uniform noise, random labels) or ``"synthetic"``
    (smooth label maps with textured, blurred, noisy images from the synthetic-task generator)."""
    if kind == "random":
        return example_inputs(batch_size, support_size, image_size, seed=seed)
    if kind != "synthetic":
        raise ValueError(f"kind must be 'random' or 'synthetic', got {kind!r}")
    gen = SyntheticTaskGenerator(size=tuple(image_size))
    images, masks = gen(num_tasks=batch_size, num_images=support_size + 1, generator=torch.Generator().manual_seed(seed))
    return images[:, 0], images[:, 1:], masks[:, 1:]


def check_parity(
    compiled: Any,
    model: nn.Module,
    support_sizes: tuple[int, ...] | None = None,
    tolerance: float = PARITY_TOLERANCE,
    seed: int = 0,
) -> ParityReport:
    """Compare ``compiled`` with ``model`` (eager, fp32, split form) on random and synthetic inputs.

    Args:
        compiled: A :class:`~universeg_plus.backends.CompiledModel`.
        model: The network it was compiled from.
        support_sizes: S values to try (default: the compiled S, or (1, 3, 17) for a symbolic S).
        tolerance: Allowed max |delta logit|.
        seed: Input seed.
    """
    if support_sizes is None:
        support_sizes = (compiled.support_size,) if compiled.support_size else (1, 3, 17)
    eager = model.eval()
    report = ParityReport(tolerance=tolerance)
    for kind in ("random", "synthetic"):
        for s in support_sizes:
            inputs = parity_inputs(kind, compiled.batch_size, s, compiled.image_size, seed=seed + s)
            with torch.no_grad():
                ref = eager(*[x.to(next(eager.parameters()).device) for x in inputs]).float().cpu()
            out = compiled(*inputs).float().cpu()
            report.max_abs_diff[f"{kind} S={s}"] = float((out - ref).abs().max())
    return report
