"""Image and label corruptions with severities 1..5 (MONAI-style transforms on tensors in [0, 1]).

    from universeg_plus.perturb import apply_perturbation, get_perturbation
    noise = get_perturbation("gaussian_noise", severity=3).set_seed(0)
    t, si, sm = apply_perturbation(target, support_images, support_masks, noise, where="support_images")
"""

from .base import Params, Perturbation
from .compose import Compose
from .intensity import BiasField, Contrast, IntensityShift
from .kspace import Ghosting, Motion
from .labels import LabelNoise
from .noise import GaussianNoise, RicianNoise
from .registry import PERTURBATIONS, get_perturbation, list_perturbations, severity_table
from .resolution import GaussianBlur, ResolutionLoss
from .where import WHERE, Where, apply_perturbation

__all__ = [
    "PERTURBATIONS",
    "WHERE",
    "BiasField",
    "Compose",
    "Contrast",
    "GaussianBlur",
    "GaussianNoise",
    "Ghosting",
    "IntensityShift",
    "LabelNoise",
    "Motion",
    "Params",
    "Perturbation",
    "RicianNoise",
    "ResolutionLoss",
    "Where",
    "apply_perturbation",
    "get_perturbation",
    "list_perturbations",
    "severity_table",
]
