"""How sure is the mask: K plausible masks, a calibrated uncertainty map, and where to look.

Training-free sampling in the manner of Tyche-IS: each sample runs the in-context model over a
support subset and one augmentation applied to target and support together; the spread of the K
outputs gives the uncertainty. Everything here takes tensors and a callable engine, so any road to
a mask (the Predictor, tiles, slices) can use it.

* :mod:`.plan`: the seeded sampling plan (:func:`draw_plan`, :class:`SampleSpec`);
* :mod:`.sampling`: a plan through an engine (:func:`sample_probabilities`);
* :mod:`.aggregate`: uncertainty maps and the image score;
* :mod:`.calibration`: recalibration fitted on validation tasks, stored with the weights;
* :mod:`.support_calibration`: a Platt map fitted on the support set's leave-one-out predictions;
* :mod:`.regions`: connected high-uncertainty regions ranked by area x uncertainty;
* :mod:`.summary`: one target's samples at its size -> everything a :class:`~universeg_plus.predictor.Prediction` reports;
* :mod:`.metrics`: relevant-pixel ECE, boundary-band AUROC, Spearman, best-of-K Dice.
"""

from __future__ import annotations

from .aggregate import UNCERTAINTY_KINDS, binary_entropy, expected_dice_error, uncertainty_map
from .calibration import CALIBRATION_NAME, Calibration, ModelCalibration, fit_calibration, model_calibration
from .plan import SampleSpec, draw_plan
from .regions import Region, connected_components, region_outlines, uncertain_regions
from .sampling import AugmentedEngine, Engine, sample_probabilities
from .summary import SampleSummary, label_map, summarize_samples
from .support_calibration import leave_one_out_calibration, leave_one_out_probabilities

__all__ = [
    "CALIBRATION_NAME",
    "AugmentedEngine",
    "UNCERTAINTY_KINDS",
    "Calibration",
    "Engine",
    "ModelCalibration",
    "Region",
    "SampleSpec",
    "SampleSummary",
    "binary_entropy",
    "connected_components",
    "draw_plan",
    "expected_dice_error",
    "fit_calibration",
    "label_map",
    "leave_one_out_calibration",
    "leave_one_out_probabilities",
    "model_calibration",
    "region_outlines",
    "sample_probabilities",
    "summarize_samples",
    "uncertain_regions",
    "uncertainty_map",
]
