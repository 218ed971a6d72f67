"""The ablation study: train every variant x seed under one recipe, then compare accuracy, robustness, speed.

    from universeg_plus.ablation import load_ablation_config, run_ablation
    run_ablation(load_ablation_config("configs/ablation.yaml"))  # train, evaluate, robustness, speed, report

Reuses :mod:`universeg_plus.train` (training, resumable), :mod:`universeg_plus.evaluation` (the
held-out protocol and its metrics), :mod:`universeg_plus.robustness` (the perturbation grid) and
:mod:`universeg_plus.backends` (compiled speed). Plots need matplotlib.
"""

from .config import AblationConfig, VariantSpec, load_ablation_config, run_label
from .report import write_report
from .runner import STAGES, evaluate_stage, robustness_stage, run_ablation, speed_stage, train_stage
from .stats import compare, spread

__all__ = [
    "STAGES",
    "AblationConfig",
    "VariantSpec",
    "compare",
    "evaluate_stage",
    "load_ablation_config",
    "robustness_stage",
    "run_ablation",
    "run_label",
    "speed_stage",
    "spread",
    "train_stage",
    "write_report",
]
