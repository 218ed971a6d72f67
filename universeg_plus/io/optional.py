"""Optional packages: imported when a feature first needs them, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(*modules: str, purpose: str, extra: str) -> ModuleType:
    """Import ``modules`` in order and return the first one.

    Args:
        modules: Module names, e.g. ``("ray", "ray.data")``: the first is returned, the others must
            import too (a package's optional part that the feature needs).
        purpose: What needs them, for the message (``"the demo needs gradio"``).
        extra: The ``universeg-plus`` extra that installs them (``"demo"``).

    Raises:
        ImportError: naming ``purpose`` and ``pip install "universeg-plus[<extra>]"``.
    """
    if not modules:
        raise TypeError("require() needs at least one module name")
    try:
        loaded = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        raise ImportError(f'{purpose}: pip install "universeg-plus[{extra}]" ({exc})') from exc
    return loaded[0]
