"""Segmentation methods for one support set, and the choice among them (``Predictor.predict(method=...)``).

- :mod:`.fit`: each method fitted to a support set (in-context, ensemble, adapted, U-Net, adapted + U-Net);
- :mod:`.auto`: ``auto``, the method chosen by leave-one-out Dice on the support set within a time budget;
- :mod:`.session`: the fitted methods of one support set, per label, kept across predictions.
"""

from .auto import DEFAULT_CANDIDATES, Choice, choose_method
from .fit import METHODS, TRAINED, Fitted, MethodSettings, fit_method
from .session import CHOICES, MethodEngine, MethodFits, check_method, summarize_engines

__all__ = [
    "CHOICES",
    "DEFAULT_CANDIDATES",
    "METHODS",
    "TRAINED",
    "Choice",
    "Fitted",
    "MethodEngine",
    "MethodFits",
    "MethodSettings",
    "check_method",
    "choose_method",
    "fit_method",
    "summarize_engines",
]
