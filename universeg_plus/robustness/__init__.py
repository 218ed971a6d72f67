"""The robustness study: perturbations x severities x where x model variants x backends, over tasks.

    from universeg_plus.robustness import load_study_config, run_study
    result = run_study(load_study_config("examples/robustness_study.yaml"))
    result.csv_path  # tidy CSV; plots and summary.md next to it

Plots need matplotlib (``pip install "universeg-plus[study]"``); it is imported when they are drawn.
"""

from .config import ModelSpec, StudyConfig, TaskSpec, load_study_config
from .report import load_results, summarize, write_report
from .runner import StudyResult, run_study, study_cases
from .saliency import Saliency, compute_saliency, plot_saliency, saliency_rmse
from .schema import COLUMNS

__all__ = [
    "COLUMNS",
    "ModelSpec",
    "Saliency",
    "StudyConfig",
    "StudyResult",
    "TaskSpec",
    "compute_saliency",
    "load_results",
    "load_study_config",
    "plot_saliency",
    "run_study",
    "saliency_rmse",
    "study_cases",
    "summarize",
    "write_report",
]
