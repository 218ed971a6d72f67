"""Chains of perturbations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .base import Params, Perturbation

__all__ = ["Compose"]


class Compose:
    """Apply perturbations in order (``Compose([Motion.from_severity(2), GaussianNoise(0.05)])``).

    ``draw`` returns one params dict per member; since every member's draw depends only on the
    input's shape, all values can be drawn before any is applied.

    Args:
        transforms: Perturbations (or nested ``Compose``), applied first to last.
        seed: Seeds the members (each gets its own seed derived from this one).
    """

    def __init__(self, transforms: Sequence[Perturbation | Compose], seed: int | None = None) -> None:
        transforms = list(transforms)
        if not transforms:
            raise ValueError("Compose needs at least one perturbation")
        for t in transforms:
            if not isinstance(t, (Perturbation, Compose)):
                raise TypeError(f"Compose takes Perturbation instances, got {type(t).__name__}")
        self.transforms = transforms
        if seed is not None:
            self.set_seed(seed)

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"

    def __len__(self) -> int:
        return len(self.transforms)

    @property
    def kinds(self) -> set[str]:
        """The kinds of input the members act on (``{"image"}``, ``{"mask"}`` or both)."""
        out: set[str] = set()
        for t in self.transforms:
            out |= t.kinds if isinstance(t, Compose) else {t.kind}
        return out

    def only(self, kind: str) -> Compose | None:
        """The sub-chain of members acting on ``kind`` (``"image"`` or ``"mask"``), or ``None``."""
        keep: list[Perturbation | Compose] = []
        for t in self.transforms:
            if isinstance(t, Compose):
                sub = t.only(kind)
                if sub is not None:
                    keep.append(sub)
            elif t.kind == kind:
                keep.append(t)
        if not keep:
            return None
        out = Compose.__new__(Compose)
        out.transforms = keep
        return out

    def set_seed(self, seed: int) -> Compose:
        """Reseed every member from ``seed``; returns ``self``."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        g = torch.Generator().manual_seed(seed)
        for t in self.transforms:
            t.set_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
        return self

    def check_input(self, x: Any) -> None:
        for t in self.transforms:
            t.check_input(x)

    def draw(self, x: torch.Tensor) -> list[Any]:
        """Each member's random values for ``x (..., H, W)``, in order."""
        return [t.draw(x) for t in self.transforms]

    def apply(self, x: torch.Tensor, params: Sequence[Params | list]) -> torch.Tensor:
        """Apply the drawn values member by member; same shape and dtype as ``x``."""
        if len(params) != len(self.transforms):
            raise ValueError(f"Compose of {len(self.transforms)} members got {len(params)} params entries")
        for t, p in zip(self.transforms, params):
            x = t.apply(x, p)
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Draw and apply every member in order."""
        for t in self.transforms:
            x = t(x)
        return x
