"""Run the robustness grid and write one tidy CSV row per task x case x target.

A *case* is (model, backend, perturbation, severity, where); severity 0 with perturbation and where
``"none"`` is the clean case. For every task the targets and the support set are fixed by the seed,
and every perturbation draw is seeded from (seed, task, perturbation, severity, where, target), so
all models and backends see exactly the same perturbed inputs. Compiled backends also record their
agreement with the eager prediction on the same input.

The CSV is appended to after each (task, model, case) group and flushed; rerunning skips rows that
are already there (a trailing partial line from an interrupted run is dropped first).
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import metrics
from ..io.tables import append_csv
from ..perturb import PERTURBATIONS, WHERE, apply_perturbation, get_perturbation
from ..support import SupportSet
from .config import ModelSpec, StudyConfig, TaskSpec, parse_backend
from .report import write_report as _write_report
from .saliency import Saliency, compute_saliency, plot_saliency, saliency_rmse
from .schema import CLEAN, COLUMNS, KEY_COLUMNS, read_done

__all__ = ["StudyResult", "run_study", "study_cases"]

log = logging.getLogger(__name__)



@dataclass
class StudyResult:
    """What a run produced.

    Attributes:
        csv_path: The results CSV.
        rows_written: Rows added by this run.
        rows_skipped: Rows already present (resumed).
        backends: Backends that ran.
        skipped_backends: Backends left out, with the reason.
        saliency_plot: The saliency figure, when written.
    """

    csv_path: Path
    rows_written: int = 0
    rows_skipped: int = 0
    backends: list[str] = field(default_factory=list)
    skipped_backends: dict[str, str] = field(default_factory=dict)
    saliency_plot: Path | None = None


def study_cases(config: StudyConfig) -> list[tuple[str, int, str]]:
    """``(perturbation, severity, where)`` of the grid, clean case first; combinations a
    perturbation cannot act on are left out."""
    cases = [CLEAN]
    for name in config.perturbations:
        kind = PERTURBATIONS[name].kind
        for where in config.where:
            slots = WHERE[where]
            applies = any(s == "support_masks" for s in slots) if kind == "mask" else any(s != "support_masks" for s in slots)
            if applies:
                cases.extend((name, s, where) for s in config.severities)
    return cases


def _seed(*parts: Any) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


# ---------------------------------------------------------------------- models and tasks
def _build_model(spec: ModelSpec, device: str, seed: int) -> nn.Module:
    from ..factory import create_model, load_model
    from ..registry import PRETRAINED, get_config

    if spec.weights is not None:
        from ..factory import from_pretrained

        model = from_pretrained(spec.weights)
        if model.config != get_config(spec.name, **spec.overrides):
            log.warning("weights %s do not have the config of %r; using the weights' config", spec.weights, spec.name)
    elif spec.name in PRETRAINED and not spec.overrides:
        model = load_model(spec.name, pretrained=True)
    else:
        log.warning("no weights for %r: the model is randomly initialised (Dice values are meaningless)", spec.name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed(seed, spec.display_name, "init"))
            model = create_model(spec.name, **spec.overrides)
    return model.to(device).eval()


def _compile(model: nn.Module, level: str, support_size: int) -> Any:
    from ..backends import compile as compile_model  # raises ImportError naming the extra without TVM

    return compile_model(model, backend="tvm", level=level, support_size=support_size, batch_size=1)


@dataclass
class _Task:
    name: str
    target_names: list[str]
    targets: torch.Tensor  # (T, 1, H, W)
    target_masks: torch.Tensor  # (T, 1, H, W) {0, 1}
    support_images: torch.Tensor  # (1, S, 1, H, W)
    support_masks: torch.Tensor  # (1, S, 1, H, W)


def _load_task(spec: TaskSpec, size: tuple[int, int], config: StudyConfig) -> _Task:
    full = SupportSet.from_folder(spec.path, size=size)
    full = full.binary(spec.label)
    n, need = len(full), config.num_targets + config.support_size
    if n < need:
        raise ValueError(
            f"task {spec.display_name} ({spec.path}) has {n} pairs, fewer than num_targets + support_size = {need}"
        )
    g = torch.Generator().manual_seed(_seed(config.seed, spec.display_name, "split"))
    perm = torch.randperm(n, generator=g).tolist()
    tgt = full.subset(perm[: config.num_targets])
    sup = full.subset(perm[config.num_targets : need])
    if not bool(sup.masks.any()):
        log.warning("task %s: the support set has no foreground", spec.display_name)
    return _Task(spec.display_name, tgt.names, tgt.images, tgt.masks, sup.images[None], sup.masks[None])


# ---------------------------------------------------------------------- one case
def _forward(model: Any, t: torch.Tensor, si: torch.Tensor, sm: torch.Tensor, device: str) -> tuple[torch.Tensor, float]:
    with torch.inference_mode():
        start = time.perf_counter()
        logits = model(t.to(device), si.to(device), sm.to(device))
        prob = torch.sigmoid(logits.float()).cpu()
        ms = (time.perf_counter() - start) * 1000.0
    return prob[0, 0], ms


def _scores(prob: torch.Tensor, ref: torch.Tensor, threshold: float) -> dict[str, float]:
    return metrics.compute_metrics(prob > threshold, ref[0] > 0.5)


def run_study(config: StudyConfig, progress: bool = True, write_report: bool = True) -> StudyResult:
    """Run the grid in ``config`` (resuming from ``out_dir/results.csv``) and write the report.

    Args:
        config: The study (see :class:`~universeg_plus.robustness.config.StudyConfig`).
        progress: Show a tqdm progress bar over (task, model, case) groups.
        write_report: Write the plots and the markdown summary afterwards.

    Returns:
        :class:`StudyResult`.

    Raises:
        ValueError: a task with too few pairs, or an existing CSV with other columns.
        FileNotFoundError: a task folder or weights folder is missing.
    """
    from tqdm.auto import tqdm

    from ..devices import resolve_device

    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = StudyResult(out_dir / "results.csv")
    done = read_done(result.csv_path)
    cases = study_cases(config)
    thr = config.threshold
    device = str(resolve_device(config.device))
    bar = tqdm(total=len(config.models) * len(config.tasks) * len(cases), disable=not progress, desc="robustness")
    backend_ok: dict[str, bool] = {}
    for mspec in config.models:
        model = _build_model(mspec, device, config.seed)
        size = tuple(model.config.input_size)
        runners: dict[str, Any] = {}
        for b in config.backends:
            kind, level = parse_backend(b)
            if kind == "eager":
                runners[b] = model
                continue
            try:
                runners[b] = _compile(model, level, config.support_size)
            except ImportError as exc:
                log.warning("skipping backend %s: %s", b, exc)
                result.skipped_backends[b] = str(exc)
        for b in runners:
            backend_ok[b] = True
        for tspec in config.tasks:
            task = _load_task(tspec, size, config)
            for r in runners.values():  # warm-up, so the first timed row is not an outlier
                _forward(r, task.targets[:1], task.support_images, task.support_masks, device)
            sal_clean: dict[int, tuple[torch.Tensor, Saliency]] = {}
            bar.set_postfix_str(f"{mspec.display_name} on {task.name}")
            for pert, sev, where in cases:
                bar.update(1)
                rows: list[dict[str, Any]] = []
                for j, tname in enumerate(task.target_names):
                    base = {"task": task.name, "model": mspec.display_name, "perturbation": pert,
                            "severity": sev, "where": where, "target": tname}
                    key = lambda b: tuple(str(base[k]) if k != "backend" else b for k in KEY_COLUMNS)  # noqa: E731
                    todo = [b for b in runners if key(b) not in done]
                    result.rows_skipped += len(runners) - len(todo)
                    if not todo:
                        continue
                    t, si, sm = task.targets[j : j + 1], task.support_images, task.support_masks
                    if pert != "none":
                        p = get_perturbation(pert, sev, seed=_seed(config.seed, task.name, pert, sev, where, tname))
                        t, si, sm = apply_perturbation(t, si, sm, p, where)
                    ref = task.target_masks[j]
                    need_eager = "eager" in runners and (
                        "eager" in todo or any(b != "eager" for b in todo)
                    )
                    eager_prob = None
                    if need_eager:
                        eager_prob, ms = _forward(model, t, si, sm, device)
                    for b in todo:
                        if b == "eager":
                            prob = eager_prob
                        else:
                            prob, ms = _forward(runners[b], t, si, sm, device)
                        row = {**base, "backend": b, **_scores(prob, ref, thr), "inference_ms": ms}
                        if b != "eager" and eager_prob is not None:
                            row["agreement_dice"] = float(metrics.dice(prob > thr, eager_prob > thr))
                            row["max_abs_dprob"] = float((prob - eager_prob).abs().max())
                        if b == "eager" and config.saliency:
                            row["saliency_rmse"] = _saliency_rmse(
                                model, sal_clean, j, task, None if pert == "none" else (t, si, sm), device, thr
                            )
                        rows.append(row)
                if rows:
                    append_csv(rows, COLUMNS, result.csv_path)
                    done.update(tuple(str(r[k]) for k in KEY_COLUMNS) for r in rows)
                    result.rows_written += len(rows)
            if config.saliency and "eager" in runners and result.saliency_plot is None:
                result.saliency_plot = _plot_example(model, task, out_dir, mspec.display_name, device)
    bar.close()
    result.backends = [b for b in config.backends if backend_ok.get(b)]
    if write_report:
        _write_report(result.csv_path, out_dir)
    return result


def _saliency_rmse(
    model: nn.Module, cache: dict[int, tuple[torch.Tensor, Saliency]], j: int, task: _Task,
    perturbed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None, device: str, thr: float,
) -> float:
    """RMSE between the clean and the perturbed target saliency, both scored on the clean prediction's
    mask (``perturbed=None``: the clean case, 0)."""
    if perturbed is None:
        return 0.0
    if j not in cache:
        clean_in = tuple(x.to(device) for x in (task.targets[j : j + 1], task.support_images, task.support_masks))
        with torch.inference_mode():
            region = (torch.sigmoid(model(*clean_in).float()) > thr).float()
        cache[j] = (region, compute_saliency(model, *clean_in, region=region))
    region, clean = cache[j]
    pert = compute_saliency(model, *(x.to(device) for x in perturbed), region=region)
    return float(saliency_rmse(clean.target.cpu(), pert.target.cpu())[0])


def _plot_example(model: nn.Module, task: _Task, out_dir: Path, model_name: str, device: str) -> Path:
    t, si, sm = task.targets[:1], task.support_images, task.support_masks
    sal = compute_saliency(model, t.to(device), si.to(device), sm.to(device))
    return plot_saliency(
        sal, t, si, sm, out_dir / "saliency.png",
        title=f"{model_name} on {task.name} / {task.target_names[0]} (clean)",
    )

