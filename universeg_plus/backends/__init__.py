"""Compiled inference paths (Apache TVM, extra ``tvm``): levels O0..O3, any support size, cached libraries.

``universeg_plus.compile(model, level="O2")`` returns a :class:`CompiledModel` with the model's
own call contract; ``universeg-plus tune`` fills the MetaSchedule database that ``O3`` applies.
Importing this package does not import TVM.
"""

from __future__ import annotations

from .cache import default_cache_dir
from .compiled import CompiledModel, compile
from .levels import LEVEL_DESCRIPTIONS, LEVELS
from .targets import host_target, resolve_target
from .tuning import TuneReport, default_tuning_dir, tune

__all__ = [
    "LEVELS",
    "LEVEL_DESCRIPTIONS",
    "CompiledModel",
    "TuneReport",
    "compile",
    "default_cache_dir",
    "default_tuning_dir",
    "host_target",
    "resolve_target",
    "tune",
]
