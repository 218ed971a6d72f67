"""The few-shot segmentation demo (``universeg-plus demo``, ``python demo/app.py``).

:mod:`.logic` holds everything the page does, in plain Python; :mod:`.ui` is the gradio page and
imports gradio, so it is loaded only when :func:`build_demo` or :func:`launch` is first used
(``pip install "universeg-plus[demo]"``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo", "launch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import ui

        return getattr(ui, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
