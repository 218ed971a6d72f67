"""Inference speed of several variants, eager and compiled, measured side by side.

Every (variant, backend) is warmed up, then timed in ``rounds`` rounds; each round times every
(variant, backend) once (``calls_per_round`` calls, their mean), in an order rotated by one each
round, so a slow phase of a shared machine hits all of them alike. The median over rounds is the
figure; the min-max over rounds is its spread. TVM's worker threads are told not to spin between
calls (``TVM_THREAD_POOL_SPIN_COUNT=0`` unless set), so they do not slow the eager calls next to them.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from .config import SpeedSection

__all__ = ["ROUND_FIELDS", "SPEED_FIELDS", "build_runners", "measure_speed", "summarize_speed"]

log = logging.getLogger(__name__)

ROUND_FIELDS = ["variant", "backend", "round", "ms_per_target"]
SPEED_FIELDS = [
    "variant",
    "backend",
    "support_size",
    "image_size",
    "batch_size",
    "rounds",
    "ms_median",
    "ms_min",
    "ms_max",
    "ratio_to_baseline",
    "ratio_to_eager",
]


def build_runners(
    models: Mapping[str, nn.Module], settings: SpeedSection
) -> tuple[dict[tuple[str, str], Callable[..., torch.Tensor]], dict[str, str]]:
    """``{(variant, backend): callable}`` for eager and every configured TVM level.

    Returns:
        The runners and ``{backend: reason}`` for TVM levels left out (TVM not installed).
    """
    from .. import backends

    runners: dict[tuple[str, str], Callable[..., torch.Tensor]] = {}
    skipped: dict[str, str] = {}
    for name, model in models.items():
        model.eval()
        runners[(name, "eager")] = model
        size = settings.image_size or tuple(model.config.input_size)
        for level in settings.tvm_levels:
            backend = f"tvm-{level}"
            if backend in skipped:
                continue
            try:
                runners[(name, backend)] = backends.compile(
                    model, backend="tvm", level=level, support_size=settings.support_size,
                    image_size=tuple(size), batch_size=settings.batch_size,
                )
            except ImportError as exc:
                log.warning("skipping compiled speed (%s): %s", backend, exc)
                skipped[backend] = str(exc)
    return runners, skipped


def _inputs(size: tuple[int, int], settings: SpeedSection) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    b, s = settings.batch_size, settings.support_size
    target = torch.rand(b, 1, *size, generator=g)
    images = torch.rand(b, s, 1, *size, generator=g)
    masks = (torch.rand(b, s, 1, *size, generator=g) > 0.5).float()
    return target, images, masks


def measure_speed(
    models: Mapping[str, nn.Module], settings: SpeedSection, progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Time every variant on every backend in interleaved rounds.

    Args:
        models: ``{variant label: model}`` (CPU, any weights: speed depends on the architecture).
        settings: What to time.
        progress: Show a tqdm bar over the rounds.

    Returns:
        One row per (variant, backend, round) (:data:`ROUND_FIELDS`, ``ms_per_target`` = the mean
        call time divided by the batch size), and the skipped backends with the reason.
    """
    from tqdm.auto import tqdm

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if settings.tvm_levels:
        # TVM's worker threads spin after each call (300k iterations by default) and would steal the
        # cores from the eager call timed next; read when TVM's thread pool starts (first call).
        os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
        if settings.threads is not None:
            os.environ.setdefault("TVM_NUM_THREADS", str(settings.threads))
    runners, skipped = build_runners(models, settings)
    inputs = {
        name: _inputs(tuple(settings.image_size or model.config.input_size), settings)
        for name, model in models.items()
    }
    keys = list(runners)
    with torch.inference_mode():
        for key in keys:
            for _ in range(settings.warmup):
                runners[key](*inputs[key[0]])
        rows: list[dict[str, Any]] = []
        for r in tqdm(range(settings.rounds), desc="speed", disable=not progress, unit="round"):
            shift = r % len(keys)
            for key in keys[shift:] + keys[:shift]:
                fn, args = runners[key], inputs[key[0]]
                start = time.perf_counter()
                for _ in range(settings.calls_per_round):
                    fn(*args)
                ms = (time.perf_counter() - start) * 1000.0 / settings.calls_per_round / settings.batch_size
                rows.append({"variant": key[0], "backend": key[1], "round": r, "ms_per_target": ms})
    return rows, skipped


def summarize_speed(
    rows: list[dict[str, Any]], settings: SpeedSection, baseline: str, sizes: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Median and min-max over rounds per (variant, backend), as ratios to ``baseline`` and to eager.

    Args:
        rows: Rows of :func:`measure_speed` (numbers may be strings, as read back from CSV).
        settings: The settings used.
        baseline: Label of the baseline variant.
        sizes: ``{variant: (H, W)}`` of the timed inputs.

    Returns:
        One row per (variant, backend) with :data:`SPEED_FIELDS`; ratios are NaN where the
        reference was not measured.
    """
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["backend"]), []).append(float(r["ms_per_target"]))
    med = {k: statistics.median(v) for k, v in groups.items()}
    out = []
    for (variant, backend), values in groups.items():
        ref = med.get((baseline, backend))
        eager = med.get((variant, "eager"))
        h, w = sizes[variant]
        out.append(
            {
                "variant": variant,
                "backend": backend,
                "support_size": settings.support_size,
                "image_size": f"{h}x{w}",
                "batch_size": settings.batch_size,
                "rounds": len(values),
                "ms_median": med[(variant, backend)],
                "ms_min": min(values),
                "ms_max": max(values),
                "ratio_to_baseline": med[(variant, backend)] / ref if ref else float("nan"),
                "ratio_to_eager": med[(variant, backend)] / eager if eager else float("nan"),
            }
        )
    return out
