"""The per-task U-Net baseline; it lives in :mod:`universeg_plus.supervised` (a user-facing method too)."""

from ..supervised import BaselineConfig, predict_baseline, train_baseline

__all__ = ["BaselineConfig", "predict_baseline", "train_baseline"]
