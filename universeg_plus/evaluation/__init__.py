"""Held-out evaluation: the episode protocol, the per-task U-Net baseline, reports and model cards."""

from .baseline import BaselineConfig, predict_baseline, train_baseline
from .holdout import check_held_out, read_training_info
from .model_card import render_model_card, write_model_card
from .native import EvalTask, native_tasks, stored_task, to_original_size
from .protocol import DEFAULT_SUPPORT_SIZES, Episode, make_episodes
from .report import headline, markdown_report, read_csv, summarize, write_report
from .runner import EvalSettings, EvaluationResult, evaluate
from .unet import UNet

__all__ = [
    "DEFAULT_SUPPORT_SIZES",
    "BaselineConfig",
    "EvalSettings",
    "EvalTask",
    "EvaluationResult",
    "Episode",
    "UNet",
    "check_held_out",
    "evaluate",
    "headline",
    "make_episodes",
    "markdown_report",
    "native_tasks",
    "predict_baseline",
    "read_csv",
    "read_training_info",
    "render_model_card",
    "stored_task",
    "summarize",
    "to_original_size",
    "train_baseline",
    "write_model_card",
    "write_report",
]
