"""TVM import guard and compilation targets (JSON-dict form; TVM 0.27 rejects ``"llvm -mcpu=..."``)."""

from __future__ import annotations

import json
import os
from typing import Any

from ..io.optional import require

__all__ = ["describe_target", "host_target", "require_tvm", "resolve_target"]


def require_tvm() -> Any:
    """Import and return ``tvm`` (with the Relax VM); raise ``ImportError`` naming the extra when it is missing."""
    return require("tvm", "tvm.relax", purpose="the TVM backend needs Apache TVM >= 0.27", extra="tvm")


def host_target() -> dict[str, Any]:
    """The JSON target of this machine's CPU, e.g. ``{"kind": "llvm", "mcpu": "znver3", "num-cores": 2}``."""
    tvm = require_tvm()
    from tvm.target import codegen

    # num-cores is what MetaSchedule sizes its parallel loops by (it refuses a CPU target without it).
    return {"kind": "llvm", "mcpu": str(codegen.llvm_get_system_cpu()), "num-cores": _physical_cores()}


def _physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:
        n = None
    return int(n or os.cpu_count() or 1)


def resolve_target(target: str | dict[str, Any] | None, portable: bool = False) -> Any:
    """A ``tvm.target.Target`` from ``None`` (host CPU), a JSON dict, a JSON string, ``"llvm"`` or ``"cuda"``.

    Args:
        target: ``None`` for the host CPU; a dict such as ``{"kind": "llvm", "mcpu": "znver4"}``;
            that dict as a JSON string; or a bare kind name (``"llvm"``, ``"cuda"``).
        portable: For ``None`` or a bare ``"llvm"``: leave out the host CPU (generic x86-64
            code); otherwise the detected CPU is filled in.

    Raises:
        ValueError: The old flag string form (``"llvm -mcpu=native"``) or an unknown target.
    """
    tvm = require_tvm()
    if isinstance(target, tvm.target.Target):
        return target
    if target is None or target == "llvm":
        spec: dict[str, Any] = {"kind": "llvm", "num-cores": _physical_cores()} if portable else host_target()
    elif isinstance(target, dict):
        spec = dict(target)
    elif isinstance(target, str):
        text = target.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"target is not valid JSON: {exc}: {text!r}") from exc
        elif " " in text or "-" in text:
            raise ValueError(
                f"target {text!r} uses the flag-string form that TVM 0.27 rejects; pass a JSON dict such as "
                '{"kind": "llvm", "mcpu": "znver4"} (or None for the host CPU)'
            )
        else:
            spec = {"kind": text}
    else:
        raise TypeError(f"target must be None, a dict or a string, got {type(target).__name__}")
    if spec.get("kind") == "cuda" and "arch" not in spec:
        arch = _cuda_arch(tvm)
        if arch:
            spec["arch"] = arch
    try:
        return tvm.target.Target(spec)
    except Exception as exc:  # TVM raises its own error types for a bad spec
        raise ValueError(f"TVM does not accept the target {spec}: {exc}") from exc


def _cuda_arch(tvm: Any) -> str | None:
    dev = tvm.cuda(0)
    if not dev.exist:
        return None
    return "sm_" + str(dev.compute_version).replace(".", "")


def describe_target(target: Any) -> str:
    """A stable JSON text of a target (used in cache keys and reports)."""
    return json.dumps(_plain(target.export()), sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes))):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)
