"""Perturbation names: one table from name to class, and the documented severity parameters."""

from __future__ import annotations

from typing import Any

from .base import Perturbation
from .intensity import BiasField, Contrast, IntensityShift
from .kspace import Ghosting, Motion
from .labels import LabelNoise
from .noise import GaussianNoise, RicianNoise
from .resolution import GaussianBlur, ResolutionLoss

__all__ = ["PERTURBATIONS", "get_perturbation", "list_perturbations", "severity_table"]

PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.name: cls
    for cls in (
        GaussianNoise,
        RicianNoise,
        Motion,
        Ghosting,
        Contrast,
        GaussianBlur,
        BiasField,
        ResolutionLoss,
        IntensityShift,
        LabelNoise,
    )
}


def list_perturbations(kind: str | None = None) -> list[str]:
    """Registered names (only those acting on ``kind``, ``"image"`` or ``"mask"``, if given)."""
    if kind not in (None, "image", "mask"):
        raise ValueError(f"kind must be 'image', 'mask' or None, got {kind!r}")
    return [n for n, c in PERTURBATIONS.items() if kind is None or c.kind == kind]


def get_perturbation(name: str, severity: int = 3, p: float = 1.0, seed: int = 0) -> Perturbation:
    """The perturbation ``name`` at ``severity`` (1 mildest .. 5 strongest).

    Raises:
        ValueError: unknown name (the valid ones are listed), severity not in 1..5, p outside [0, 1].
    """
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; valid names: {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name].from_severity(severity, p=p, seed=seed)


def severity_table() -> list[dict[str, Any]]:
    """One row per perturbation: ``name``, ``kind``, ``parameters`` and ``severities`` (5 dicts)."""
    rows = []
    for name, cls in PERTURBATIONS.items():
        rows.append(
            {
                "name": name,
                "kind": cls.kind,
                "parameters": list(cls.SEVERITY[0]),
                "severities": [dict(s) for s in cls.SEVERITY],
            }
        )
    return rows
