"""The bundled example tasks (``examples/data`` of a repository checkout)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_examples_dir"]

# universeg_plus/data/examples.py -> <repo>/examples/data
_CHECKOUT_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"


def default_examples_dir() -> Path | None:
    """The repository's ``examples/data`` folder, or ``None`` (e.g. when the package is pip-installed)."""
    return _CHECKOUT_EXAMPLES if _CHECKOUT_EXAMPLES.is_dir() else None
