"""The perturbation base class (MONAI-style): validated arguments, an owned generator, draw apart from apply.

A perturbation acts on a tensor of shape ``(..., H, W)`` (e.g. a target batch ``(B, 1, H, W)`` or a
support batch ``(B, S, 1, H, W)``) with values in [0, 1]; every image plane ``(H, W)`` gets its own
random values, and the output has the input's shape and dtype.

``params = t.draw(x)`` depends only on ``x``'s shape and device, and consumes the generator in the
same way at every severity: with one seed, severity 4 corrupts the same lines, signs and noise
fields as severity 2, only more strongly. ``t.apply(x, params)`` is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch

__all__ = ["Kind", "Params", "Perturbation", "check_integer", "check_number", "check_severity"]

Params = dict[str, torch.Tensor]
Kind = Literal["image", "mask"]
SEVERITIES = (1, 2, 3, 4, 5)


def check_severity(severity: Any) -> int:
    """``severity`` as an int in 1..5; ValueError otherwise."""
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    return int(severity)


def check_probability(p: Any) -> float:
    """``p`` as a float in [0, 1]; ValueError otherwise."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"probability p must be a number in [0, 1], got {p!r}")
    return float(p)


def check_number(
    name: str, value: Any, owner: str, low: float = 0.0, high: float | None = None, *, high_open: bool = False
) -> float:
    """A constructor argument as a float in ``[low, high]`` (``[low, high)`` with ``high_open``; no upper
    bound without ``high``); ValueError naming ``owner`` and the range otherwise (NaN included)."""
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    x = float(value) if number else math.nan
    if not (x >= low and (high is None or (x < high if high_open else x <= high))):
        span = f">= {low:g}" if high is None else f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be a number {span}, got {value!r}")
    return x


def check_integer(name: str, value: Any, owner: str, low: int) -> int:
    """A constructor argument as an int ``>= low`` (bools refused); ValueError naming ``owner`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")
    return value


class Perturbation:
    """Base class of every corruption.

    Subclasses set ``ARGS`` (their own constructor arguments, shown by ``repr``), ``SEVERITY`` (five
    parameter dicts, mildest first, each entry's values at least as strong as the previous one's), ``kind`` (``"image"`` or ``"mask"``) and implement
    ``_draw(n, h, w, generator) -> Params`` (CPU tensors with first dim ``n``) and
    ``_apply(x (n, 1, h, w) float, params) -> (n, 1, h, w)``.

    Args:
        p: Probability that a given image plane is perturbed (the others pass through unchanged).
        seed: Seed of the owned ``torch.Generator`` (see :meth:`set_seed`).
    """

    SEVERITY: ClassVar[tuple[Mapping[str, Any], ...]] = ()
    kind: ClassVar[Kind] = "image"
    name: ClassVar[str] = ""
    ARGS: ClassVar[tuple[str, ...]] = ()  # the constructor arguments shown by repr, in order

    def __init__(self, p: float = 1.0, seed: int = 0) -> None:
        self.p = check_probability(p)
        self.severity: int | None = None
        self.generator = torch.Generator()
        self.set_seed(seed)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_severity(cls, severity: int, p: float = 1.0, seed: int = 0) -> Perturbation:
        """The perturbation with the documented parameters of ``severity`` (1 mildest .. 5 strongest).

        Raises:
            ValueError: ``severity`` not an integer in 1..5, or ``p`` outside [0, 1].
        """
        s = check_severity(severity)
        inst = cls(**dict(cls.SEVERITY[s - 1]), p=p, seed=seed)
        inst.severity = s
        return inst

    def set_seed(self, seed: int) -> Perturbation:
        """Reseed the owned generator; returns ``self`` (``t = GaussianNoise(0.1).set_seed(3)``)."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.generator.manual_seed(seed)
        return self

    def _arg_repr(self) -> str:
        return ", ".join(f"{a}={getattr(self, a)}" for a in self.ARGS)

    def __repr__(self) -> str:
        sev = f", severity={self.severity}" if self.severity is not None else ""
        args = self._arg_repr()
        return f"{type(self).__name__}({args + ', ' if args else ''}p={self.p}{sev})"

    # ------------------------------------------------------------------ subclass hooks
    def _draw(self, n: int, h: int, w: int, g: torch.Generator) -> Params:
        raise NotImplementedError

    def _apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    def check_input(self, x: Any) -> None:
        """Raise TypeError/ValueError unless ``x`` is a float tensor ``(..., H, W)`` in [0, 1]
        (binary {0, 1} for mask perturbations)."""
        owner = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{owner} takes a torch.Tensor (..., H, W), got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{owner} takes a floating-point tensor, got dtype {x.dtype}")
        if x.ndim < 2 or x.shape[-1] < 1 or x.shape[-2] < 1:
            raise ValueError(f"{owner} takes a tensor of shape (..., H, W), got {tuple(x.shape)}")
        if x.numel() == 0:
            return
        if self.kind == "mask":
            if not bool(((x == 0) | (x == 1)).all()):
                raise ValueError(f"{owner} takes binary masks with values in {{0, 1}}")
        elif not bool(torch.isfinite(x).all()) or float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ValueError(
                f"{owner} takes images with finite values in [0, 1], got range "
                f"[{float(x.min()):.4g}, {float(x.max()):.4g}]"
            )

    def draw(self, x: torch.Tensor) -> Params:
        """Random values for every image plane of ``x (..., H, W)`` (only shape and device are used).

        Returns:
            A dict of tensors with first dim ``N = x[..., 0, 0].numel()``, including a bool ``"on"``.
        """
        if not isinstance(x, torch.Tensor) or x.ndim < 2:
            raise ValueError(f"{type(self).__name__}.draw takes a tensor (..., H, W), got {getattr(x, 'shape', x)!r}")
        n = int(x[..., 0, 0].numel())
        h, w = int(x.shape[-2]), int(x.shape[-1])
        on = torch.rand(n, generator=self.generator) < self.p
        params = self._draw(n, h, w, self.generator)
        params["on"] = on
        return {k: v.to(x.device) for k, v in params.items()}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Apply drawn values to ``x (..., H, W)``; returns the same shape and dtype."""
        self.check_input(x)
        n = int(x[..., 0, 0].numel())
        on = params.get("on")
        if on is None or on.shape != (n,):
            raise ValueError(
                f"{type(self).__name__}: params were drawn for a different input; expected 'on' of shape "
                f"({n},), got {None if on is None else tuple(on.shape)}"
            )
        if n == 0:
            return x.clone()
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        flat = x.reshape(n, 1, *x.shape[-2:]).to(work)
        out = self._apply(flat, params)
        out = torch.where(on.view(-1, 1, 1, 1), out, flat)
        if self.kind == "image":
            out = out.clamp(0.0, 1.0)
        return out.to(x.dtype).reshape(x.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Draw and apply: a perturbed copy of ``x (..., H, W)``, same shape and dtype."""
        self.check_input(x)
        return self.apply(x, self.draw(x))
