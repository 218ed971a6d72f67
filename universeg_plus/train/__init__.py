"""Training: run config, episode sampling, augmentation, loss, the loop and DDP helpers."""

from .config import RunConfig, load_run_config
from .loop import train

__all__ = ["RunConfig", "load_run_config", "train"]
