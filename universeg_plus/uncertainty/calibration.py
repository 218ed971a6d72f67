"""Recalibrating a model's probabilities: fitted on validation tasks, stored with the weights.

A :class:`Calibration` maps a probability through its logit, ``p' = sigmoid(scale * logit(p) + shift)``
(Platt scaling; ``shift = 0`` is temperature scaling with ``T = 1 / scale``, which keeps every
0.5-threshold mask unchanged). A model's :class:`ModelCalibration` holds one for single predictions
and one for the mean of K samples (averaging already softens the probabilities, so they need
different maps), and is saved as ``calibration.json`` beside ``config.json`` and the weights.

:func:`fit_calibration` chooses the map that minimises the ECE over the *relevant* pixels
(:func:`~universeg_plus.uncertainty.metrics.relevant_pixels`, recomputed for each candidate map) of
a pixel pool, by grid search: the quantity the evaluation reports, not a proxy.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.json_files import read_json_object, write_json
from .metrics import expected_calibration_error

__all__ = ["CALIBRATION_NAME", "Calibration", "ModelCalibration", "fit_calibration", "model_calibration"]

#: File name of a model's calibration inside its weights folder.
CALIBRATION_NAME = "calibration.json"
_EPS = 1e-7


@dataclass(frozen=True)
class Calibration:
    """``p' = sigmoid(scale * logit(p) + shift)``; the identity by default."""

    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"calibration scale must be a positive finite number, got {self.scale}")
        if not math.isfinite(self.shift):
            raise ValueError(f"calibration shift must be finite, got {self.shift}")

    @property
    def identity(self) -> bool:
        """Whether the map changes nothing."""
        return self.scale == 1.0 and self.shift == 0.0

    def __call__(self, p: Any) -> Any:
        """Apply to probabilities in [0, 1] (torch tensor or NumPy array, same type and shape back)."""
        if self.identity:
            return p
        if isinstance(p, np.ndarray):
            q = np.clip(p.astype(np.float64), _EPS, 1 - _EPS)
            z = self.scale * (np.log(q) - np.log1p(-q)) + self.shift
            return (1.0 / (1.0 + np.exp(-z))).astype(p.dtype if p.dtype.kind == "f" else np.float32)
        q = p.double().clamp(_EPS, 1 - _EPS)
        return torch.sigmoid(self.scale * torch.logit(q) + self.shift).to(p.dtype if p.is_floating_point() else torch.float32)

    def inverse(self) -> Calibration:
        """The map that undoes this one (``inverse()(self(p)) == p`` up to float round-off)."""
        return Calibration(1.0 / self.scale, -self.shift / self.scale)


@dataclass(frozen=True)
class ModelCalibration:
    """A model's calibration: single predictions and the mean of K samples, plus how it was fitted.

    Attributes:
        single: Map for ``samples=1`` probabilities.
        samples: Map for the mean of ``samples > 1`` probabilities (fitted at ``info["samples"]``).
        info: Free-form: tasks fitted on, support sizes, pixels, ECE before/after, the command.
    """

    single: Calibration = field(default_factory=Calibration)
    samples: Calibration = field(default_factory=Calibration)
    info: dict[str, Any] = field(default_factory=dict)

    def for_samples(self, k: int) -> Calibration:
        """The map for ``k`` samples (1: single)."""
        return self.single if k <= 1 else self.samples

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/calibration.json`` atomically; returns its path."""
        data = {"format": 1, "single": asdict(self.single), "samples": asdict(self.samples), "info": self.info}
        return write_json(Path(folder) / CALIBRATION_NAME, data)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ModelCalibration | None:
        """Read ``folder/calibration.json``; ``None`` when there is none.

        Raises:
            ValueError: a file that is not a calibration (names the file and the problem).
        """
        path = Path(folder) / CALIBRATION_NAME
        data = read_json_object(path) if path.is_file() else None
        if data is None:
            return None
        try:
            if data.get("format") != 1:
                raise ValueError(f"unknown format {data.get('format')!r} (expected 1)")
            return cls(Calibration(**data["single"]), Calibration(**data["samples"]), dict(data.get("info") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is not a valid calibration file: {exc}") from None


def model_calibration(model: Any) -> ModelCalibration | None:
    """A model's calibration: ``model.calibration`` when set, else the ``calibration.json`` in the folder its
    weights were read from (``model.weights_folder``, set by :mod:`universeg_plus.hub`), else ``None``.

    Raises:
        ValueError: a calibration file that cannot be read (named).
    """
    cal = getattr(model, "calibration", None)
    if isinstance(cal, ModelCalibration):
        return cal
    folder = getattr(model, "weights_folder", None)
    return ModelCalibration.load(folder) if folder is not None else None


def _relevant_ece(p: np.ndarray, y: np.ndarray, cal: Calibration, floor: float, bins: int) -> float:
    q = cal(p)
    return expected_calibration_error(q, y, (q > floor) | y, bins)


def fit_calibration(
    prob: Any,
    ref: Any,
    kind: str = "platt",
    floor: float = 0.02,
    bins: int = 15,
    max_pixels: int = 500_000,
    seed: int = 0,
) -> tuple[Calibration, dict[str, float]]:
    """Fit a :class:`Calibration` minimising the relevant-pixel ECE of a pool of pixels.

    Args:
        prob: Probabilities in [0, 1] (any shape; e.g. concatenated flattened images).
        ref: Truth, same size (bool / {0, 1}).
        kind: ``"platt"`` (scale and shift) or ``"temperature"`` (scale only: masks unchanged).
        floor: Relevance floor (see :func:`~universeg_plus.uncertainty.metrics.relevant_pixels`).
        bins: ECE bins.
        max_pixels: Subsample the pool to at most this many pixels (seeded) to bound the time.
        seed: Seed of the subsample.

    Returns:
        The map, and ``{"ece_before": ..., "ece_after": ..., "pixels": ...}`` on the pool.
    """
    if kind not in ("platt", "temperature"):
        raise ValueError(f"kind must be 'platt' or 'temperature', got {kind!r}")
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(ref).ravel() > 0
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"prob and ref must be non-empty and the same size, got {p.size} and {y.size}")
    # pixels with p < 1e-6 that are background stay below the floor for every map on the grid
    keep = (p > 1e-6) | y
    p, y = p[keep], y[keep]
    if p.size > max_pixels:
        pick = np.random.default_rng(seed).choice(p.size, max_pixels, replace=False)
        p, y = p[pick], y[pick]
    best, best_ece = Calibration(), _relevant_ece(p, y, Calibration(), floor, bins)
    before = best_ece
    scales = np.exp(np.linspace(math.log(0.25), math.log(4.0), 25))
    shifts = np.linspace(-3.0, 3.0, 17) if kind == "platt" else np.zeros(1)
    for coarse in (True, False):
        for a in scales:
            for b in shifts:
                cal = Calibration(float(a), float(b))
                ece = _relevant_ece(p, y, cal, floor, bins)
                if ece < best_ece - 1e-9:
                    best, best_ece = cal, ece
        if coarse:  # refine around the best point
            scales = best.scale * np.exp(np.linspace(-0.12, 0.12, 13))
            shifts = best.shift + np.linspace(-0.25, 0.25, 11) if kind == "platt" else np.zeros(1)
    return best, {"ece_before": before, "ece_after": best_ece, "pixels": float(p.size)}
