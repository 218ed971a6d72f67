"""Training: run config, episode sampling, the loop and DDP helpers (augmentations: :mod:`universeg_plus.data.augment`; loss: :mod:`universeg_plus.nn.loss`)."""

from .config import RunConfig, load_run_config
from .loop import train

__all__ = ["RunConfig", "load_run_config", "train"]
