"""universeg_plus: in-context medical image segmentation.

The core (this module and the network) needs only torch, einops and pydantic; everything else is
imported lazily on first use (PEP 562), so ``import universeg_plus`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .config import UniverSegConfig
from .model import UniverSegPlus
from .factory import create_model, load_model
from .registry import default_model_name, get_config, list_models, list_pretrained

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "PredictOptions": ".options",
    "Prediction": ".predictor",
    "Predictor": ".predictor",
    "Resize": ".inferers",
    "Slices": ".inferers",
    "Tiles": ".inferers",
    "SupportSet": ".support",
    "segment": ".predictor",
    "compute_metrics": ".metrics",
    "dice": ".metrics",
    "hd95": ".metrics",
    "iou": ".metrics",
    "per_class_metrics": ".metrics",
    "sensitivity": ".metrics",
    "specificity": ".metrics",
    "SyntheticTaskGenerator": ".data.synthetic",
    "TaskCollection": ".data.tasks",
    "load_task_root": ".data.tasks",
    "EvalSettings": ".evaluation",
    "evaluate": ".evaluation",
    "write_model_card": ".evaluation",
    "convert_official": ".factory",
    "from_pretrained": ".factory",
    "push_to_hub": ".hub",
    "save_pretrained": ".hub",
    "CompiledModel": ".backends",
    "compile": ".backends",
    "apply_perturbation": ".perturb",
    "get_perturbation": ".perturb",
    "list_perturbations": ".perturb",
    "compute_saliency": ".robustness",
    "load_study_config": ".robustness",
    "run_study": ".robustness",
}

__all__ = [
    "UniverSegConfig",
    "UniverSegPlus",
    "create_model",
    "default_model_name",
    "get_config",
    "list_models",
    "list_pretrained",
    "load_model",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
