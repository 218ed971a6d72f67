"""The ablation pipeline: train every (variant, seed), evaluate, robustness, speed, report.

    from universeg_plus.ablation import load_ablation_config, run_ablation
    run_ablation(load_ablation_config("configs/ablation.yaml"), stages=["all"])

Layout under ``out_dir``::

    runs/<variant>/seed<k>/     the training run (model/, best/, last.pt, log.csv, ablation.json)
    eval/<variant>/seed<k>/     per_target.csv, summary.csv, results.md, ablation.json
    robustness/                 results.csv (one model per (variant, seed)), its plots and summary.md
    speed/                      rounds.csv, speed.csv, ablation.json
    timings.json                wall time and machine of each stage invocation
    *.csv, *.png, ablation.md   the aggregated report (see :mod:`universeg_plus.ablation.report`)

Every stage is resumable: a (variant, seed) whose ``ablation.json`` says ``done`` for the same
settings is skipped (an interrupted training resumes from its ``last.pt``); a marker written for
other settings is an error rather than a silent mix of two recipes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import AblationConfig, run_label

__all__ = [
    "MARKER_NAME",
    "STAGES",
    "evaluate_stage",
    "grid",
    "is_trained",
    "load_eval_tasks",
    "machine_info",
    "read_marker",
    "robustness_stage",
    "robustness_study_config",
    "run_ablation",
    "speed_stage",
    "train_fingerprint",
    "train_stage",
]

log = logging.getLogger(__name__)

STAGES = ("train", "evaluate", "robustness", "speed", "report")
MARKER_NAME = "ablation.json"
# train settings that do not change what is trained (a run may resume with other values)
_RUNTIME_TRAIN_KEYS = ("progress", "resume", "max_minutes", "stop_at", "num_threads", "log_every", "ckpt_every")


# ---------------------------------------------------------------------- helpers
def machine_info() -> dict[str, Any]:
    """CPU model, core count, torch threads and version, GPU (if any), OS."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``<folder>/ablation.json`` as a dict, or ``None`` when absent.

    Raises:
        ValueError: the file is not a JSON object.
    """
    path = Path(folder) / MARKER_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def _write_marker(folder: Path, data: dict[str, Any]) -> None:
    from ..io.atomic import atomic_write_text

    atomic_write_text(folder / MARKER_NAME, json.dumps(data, indent=2, default=str) + "\n")


def _check_marker(folder: Path, marker: dict[str, Any] | None, fingerprint: str, what: str) -> None:
    if marker is not None and marker.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{folder} holds {what} made with other settings (fingerprint {marker.get('fingerprint')}, now "
            f"{fingerprint}); choose another out_dir or delete that folder to redo it"
        )


def _record_time(cfg: AblationConfig, stage: str, wall_s: float, work: int, command: str | None) -> None:
    """Append this invocation's wall time, command and machine to ``<out_dir>/timings.json`` (if it did work)."""
    from ..io.atomic import atomic_write_text

    if not work:
        return

    path = Path(cfg.out_dir) / "timings.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault(stage, []).append(
        {"wall_s": round(wall_s, 2), "work_items": work, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
         "command": command, "machine": machine_info()}
    )
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def grid(cfg: AblationConfig) -> list[tuple[str, int]]:
    """``(variant label, seed)`` pairs in run order (seed-major, so every variant gets seed 0 first)."""
    return [(label, seed) for seed in cfg.seeds for label in cfg.labels]


def train_fingerprint(cfg: AblationConfig, label: str, seed: int) -> str:
    """Hash of everything that decides what a (variant, seed) run trains."""
    data = cfg.run_config(label, seed).model_dump(mode="json")
    for k in _RUNTIME_TRAIN_KEYS:
        data["train"].pop(k, None)
    return _fingerprint(data)


def is_trained(cfg: AblationConfig, label: str, seed: int) -> bool:
    """Whether the (variant, seed) run finished (marker ``done`` and final model folder present)."""
    run = cfg.run_dir(label, seed)
    marker = read_marker(run)
    return bool(marker and marker.get("status") == "done" and (run / "model" / "model.safetensors").is_file())


def _finished(cfg: AblationConfig, stage: str) -> list[tuple[str, int]]:
    done, missing = [], []
    for label, seed in grid(cfg):
        (done if is_trained(cfg, label, seed) else missing).append((label, seed))
    if missing:
        log.warning(
            "%s: %d run(s) not trained yet, left out: %s", stage, len(missing),
            ", ".join(run_label(*m) for m in missing),
        )
    return done


# ---------------------------------------------------------------------- train
def train_stage(cfg: AblationConfig, progress: bool = True, command: str | None = None) -> list[dict[str, Any]]:
    """Train every (variant, seed) from scratch into ``runs/<variant>/seed<k>``.

    A finished run is skipped; an interrupted one resumes from its ``last.pt``. A run that stops
    early (``train.max_minutes`` or ``train.stop_at``) is left unfinished for the next invocation.

    Args:
        cfg: The ablation.
        progress: Show tqdm bars.
        command: The command line, recorded in ``timings.json`` for the report.

    Returns:
        One dict per run: ``variant, seed, status`` (``"skipped"``, ``"done"`` or why it stopped),
        ``step``, ``wall_s`` (this invocation).

    Raises:
        ValueError: a run folder holds a run of another recipe.
    """
    from tqdm.auto import tqdm

    from ..train.loop import train

    t0 = time.time()
    out: list[dict[str, Any]] = []
    work = 0
    pairs = grid(cfg)
    bar = tqdm(pairs, desc="ablation train", disable=not progress, unit="run")
    for label, seed in bar:
        bar.set_postfix_str(run_label(label, seed))
        run = cfg.run_dir(label, seed)
        fp = train_fingerprint(cfg, label, seed)
        marker = read_marker(run)
        _check_marker(run, marker, fp, "a training run")
        if is_trained(cfg, label, seed):
            log.info("%s: already trained (%s), skipped", run_label(label, seed), run)
            out.append({"variant": label, "seed": seed, "status": "skipped", "step": marker.get("step"), "wall_s": 0.0})
            continue
        run.mkdir(parents=True, exist_ok=True)
        _write_marker(run, {"fingerprint": fp, "status": "running", "variant": label, "seed": seed})
        run_cfg = cfg.run_config(label, seed, progress=None if progress else False)
        log.info("%s: training %d steps into %s", run_label(label, seed), run_cfg.train.steps, run)
        summary = train(run_cfg)
        work += 1
        status = "done" if summary["stopped"] == "done" else summary["stopped"]
        info = json.loads((run / "model" / "training.json").read_text())
        _write_marker(
            run,
            {
                "fingerprint": fp,
                "status": status,
                "variant": label,
                "seed": seed,
                "model": run_cfg.model.name,
                "model_overrides": run_cfg.model.overrides,
                "step": summary["step"],
                "steps": run_cfg.train.steps,
                "elapsed_s": info.get("elapsed_s"),
                "param_digest": summary["param_digest"],
                "machine": machine_info(),
            },
        )
        if status != "done":
            log.warning("%s stopped (%s) at step %d: rerun to continue", run_label(label, seed), status,
                        summary["step"])
        out.append(
            {"variant": label, "seed": seed, "status": status, "step": summary["step"], "wall_s": summary["wall_s"]}
        )
    bar.close()
    _record_time(cfg, "train", time.time() - t0, work, command)
    return out


# ---------------------------------------------------------------------- evaluate
def _eval_datasets(cfg: AblationConfig) -> list[str] | None:
    """Requested evaluation tasks, or ``None`` for the run config's held-out datasets."""
    return list(cfg.evaluate.tasks) if cfg.evaluate.tasks else None


def load_eval_tasks(cfg: AblationConfig, size: tuple[int, int]) -> Any:
    """The held-out evaluation tasks at ``size`` (a :class:`~universeg_plus.data.tasks.TaskCollection`).

    Raises:
        ValueError: no data source, tasks at another size, unknown or no tasks.
        FileNotFoundError: ``data.root`` is missing.
    """
    from ..data.tasks import TaskCollection, load_task_root

    d = cfg.base_run_config().data
    requested = _eval_datasets(cfg)
    held_out = [v for v in d.val_tasks if v not in d.exclude]
    if d.tasks_file is not None:
        coll = TaskCollection.load(d.tasks_file)
        wrong = sorted({t.name for t in coll if t.size != tuple(size)})
        if wrong:
            raise ValueError(
                f"data.tasks_file {d.tasks_file} holds tasks not at the models' input size {tuple(size)}: {wrong[:3]}"
            )
        datasets = sorted({r.split("/", 1)[0] for r in requested}) if requested else [
            v for v in held_out if v in set(coll.datasets)
        ]
    elif d.root is not None:
        root = Path(d.root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root {root} does not exist")
        datasets = sorted({r.split("/", 1)[0] for r in requested}) if requested else [
            v for v in held_out if (root / v / "images").is_dir()
        ]
        coll = (
            load_task_root(root, size, include=datasets, min_pixels=d.min_pixels, cache_dir=d.cache_dir)
            if datasets
            else None
        )
    else:
        raise ValueError("evaluate needs data.root or data.tasks_file in the train config (held-out task folders)")
    if not datasets or coll is None:
        raise ValueError(
            f"none of the held-out datasets {held_out} is in the data; set evaluate.tasks or data.val_tasks"
        )
    tasks = coll.filter(include=requested or datasets)
    if requested:
        found = {t.name for t in tasks} | {t.dataset for t in tasks}
        missing = sorted(set(requested) - found)
        if missing:
            raise ValueError(f"evaluate.tasks: unknown task(s) {missing}; available: {', '.join(coll.names)}")
    if not len(tasks):
        raise ValueError("evaluate: no tasks left to evaluate")
    return tasks


def _set_threads(cfg: AblationConfig) -> None:
    import torch

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name}: CUDA is not available on this machine")
    return name


def evaluate_stage(cfg: AblationConfig, progress: bool = True, command: str | None = None) -> list[dict[str, Any]]:
    """Evaluate every trained (variant, seed) on the same held-out tasks at each S.

    Uses :func:`universeg_plus.evaluation.evaluate` (with and without ensembling as configured) and
    its report writer into ``eval/<variant>/seed<k>``; refuses tasks a model was trained on.

    Args:
        cfg: The ablation.
        progress: Show tqdm bars.
        command: The command line, recorded in ``timings.json`` for the report.

    Returns:
        One dict per trained run: ``variant, seed, status`` (``"skipped"`` or ``"done"``), ``wall_s``.

    Raises:
        ValueError: a held-out task was used in training, or bad task settings.
    """
    import torch
    from tqdm.auto import tqdm

    from ..evaluation import check_held_out, evaluate, read_training_info, write_report
    from ..hub import load_folder

    t0 = time.time()
    _set_threads(cfg)
    s = cfg.evaluate
    device = _device(s.device)
    tasks_by_size: dict[tuple[int, int], Any] = {}
    out: list[dict[str, Any]] = []
    work = 0
    pairs = _finished(cfg, "evaluate")
    bar = tqdm(pairs, desc="ablation evaluate", disable=not progress, unit="model")
    for label, seed in bar:
        bar.set_postfix_str(run_label(label, seed))
        weights = cfg.run_dir(label, seed) / s.weights
        dest = cfg.eval_dir(label, seed)
        fp = _fingerprint(
            {"settings": s.settings.model_dump(mode="json"), "tasks": s.tasks, "weights": s.weights,
             "digest": _file_digest(weights / "model.safetensors")}
        )
        marker = read_marker(dest)
        if marker is not None and marker.get("fingerprint") == fp and (dest / "summary.csv").is_file():
            out.append({"variant": label, "seed": seed, "status": "skipped", "wall_s": 0.0})
            continue
        t1 = time.time()
        model = load_folder(weights)
        size = tuple(model.config.input_size)
        if size not in tasks_by_size:
            tasks_by_size[size] = load_eval_tasks(cfg, size)
        tasks = tasks_by_size[size]
        check_held_out([(t.name, t.dataset) for t in tasks], read_training_info(weights), f"the weights in {weights}")
        info = {
            "model": f"{label} ({cfg.variant(label).name}), seed {seed}",
            "weights": str(weights),
            "device": device if device != "cpu" else f"cpu, {torch.get_num_threads()} thread(s)",
        }
        result = evaluate(model, tasks, s.settings, device=device, progress=False, info=info)
        write_report(result, dest)
        wall = time.time() - t1
        work += 1
        _write_marker(dest, {"fingerprint": fp, "status": "done", "variant": label, "seed": seed,
                             "tasks": [t.name for t in tasks], "wall_s": round(wall, 2)})
        log.info("%s: evaluated %d task(s) in %.1f s -> %s", run_label(label, seed), len(tasks), wall, dest)
        out.append({"variant": label, "seed": seed, "status": "done", "wall_s": wall})
    bar.close()
    _record_time(cfg, "evaluate", time.time() - t0, work, command)
    return out


# ---------------------------------------------------------------------- robustness
def robustness_study_config(cfg: AblationConfig, runs: Sequence[tuple[str, int]]) -> Any:
    """The :class:`~universeg_plus.robustness.StudyConfig` over the given trained runs (eager backend).

    Raises:
        ValueError: a task by ``dataset`` without ``data.root``, or an invalid study.
    """
    from ..robustness import load_study_config

    r = cfg.robustness
    base = cfg.base_run_config()
    root = base.data.root
    specs = r.tasks
    if specs is None:
        if root is None:
            raise ValueError("robustness.tasks is needed when the train config has no data.root (task folders)")
        held_out = [v for v in base.data.val_tasks if v not in base.data.exclude]
        names = sorted({t.split("/", 1)[0] for t in cfg.evaluate.tasks}) if cfg.evaluate.tasks else held_out
        specs_data = [{"path": str(Path(root) / n)} for n in names if (Path(root) / n / "images").is_dir()]
    else:
        specs_data = []
        for i, t in enumerate(specs):
            if t.dataset is not None and root is None:
                raise ValueError(f"robustness.tasks[{i}]: 'dataset' needs data.root in the train config; use 'path'")
            path = str(Path(root) / t.dataset) if t.dataset is not None else t.path
            item: dict[str, Any] = {"path": path}
            if t.label is not None:
                item["label"] = t.label
            if t.name is not None:
                item["name"] = t.name
            specs_data.append(item)
    if not specs_data:
        raise ValueError("robustness: no task folders found; set robustness.tasks")
    models = []
    for label, seed in runs:
        v = cfg.variant(label)
        models.append(
            {"name": v.name, "overrides": cfg.variant_overrides(v), "label": run_label(label, seed),
             "weights": str(cfg.run_dir(label, seed) / cfg.evaluate.weights)}
        )
    data = {
        "tasks": specs_data,
        "models": models,
        "backends": ["eager"],
        "perturbations": r.perturbations,
        "severities": r.severities,
        "where": r.where,
        "support_size": r.support_size,
        "num_targets": r.num_targets,
        "threshold": r.threshold,
        "seed": r.seed,
        "saliency": r.saliency,
        "out_dir": str(Path(cfg.out_dir) / "robustness"),
        "device": _device(r.device),
    }
    return load_study_config(data=data)


def robustness_stage(cfg: AblationConfig, progress: bool = True, command: str | None = None) -> Any:
    """Run the robustness study on every trained (variant, seed) (resumes from its CSV).

    Args:
        cfg: The ablation.
        progress: Show tqdm bars.
        command: The command line, recorded in ``timings.json`` for the report.

    Returns:
        The :class:`~universeg_plus.robustness.StudyResult`.

    Raises:
        ValueError: a robustness task was used to train one of the models, or an invalid study.
    """
    from ..evaluation import check_held_out, read_training_info
    from ..robustness import run_study

    t0 = time.time()
    _set_threads(cfg)
    runs = _finished(cfg, "robustness")
    if not runs:
        raise ValueError("robustness: no trained run yet; run --stage train first")
    study = robustness_study_config(cfg, runs)
    for label, seed in runs:
        weights = cfg.run_dir(label, seed) / cfg.evaluate.weights
        check_held_out(
            [(t.display_name, Path(t.path).name) for t in study.tasks], read_training_info(weights),
            f"the weights in {weights}",
        )
    result = run_study(study, progress=progress, write_report=True)
    log.info("robustness: %d new row(s), %d already present", result.rows_written, result.rows_skipped)
    _record_time(cfg, "robustness", time.time() - t0, result.rows_written, command)
    return result


# ---------------------------------------------------------------------- speed
def speed_stage(cfg: AblationConfig, progress: bool = True, command: str | None = None) -> Path:
    """Time every variant (eager, and compiled where configured) in one interleaved run.

    Uses the final weights of the variant's first trained seed (random weights, with a note in the
    log, when none is trained: the time depends on the architecture only). Skipped when
    ``speed/ablation.json`` matches the settings; delete ``speed/`` to measure again.

    Args:
        cfg: The ablation.
        progress: Show tqdm bars.
        command: The command line, recorded in ``timings.json`` for the report.

    Returns:
        The ``speed/speed.csv`` path.
    """
    from ..evaluation.report import write_csv
    from ..hub import load_folder
    from ..factory import create_model
    from .speed import ROUND_FIELDS, SPEED_FIELDS, measure_speed, summarize_speed

    t0 = time.time()
    dest = Path(cfg.out_dir) / "speed"
    models, sources = {}, {}
    for label in cfg.labels:
        trained = [s for s in cfg.seeds if is_trained(cfg, label, s)]
        if trained:
            weights = cfg.run_dir(label, trained[0]) / cfg.evaluate.weights
            models[label], sources[label] = load_folder(weights), str(weights)
        else:
            log.info("speed: %s has no trained run; timing randomly initialised weights", label)
            v = cfg.variant(label)
            models[label], sources[label] = create_model(v.name, **cfg.variant_overrides(v)), "random init"
    settings = cfg.speed
    if settings.threads is None and cfg.threads is not None:
        settings = settings.model_copy(update={"threads": cfg.threads})
    fp = _fingerprint({"settings": settings.model_dump(mode="json"), "sources": sources,
                       "configs": {k: m.config.model_dump(mode="json") for k, m in models.items()}})
    marker = read_marker(dest)
    if marker is not None and marker.get("fingerprint") == fp and (dest / "speed.csv").is_file():
        log.info("speed: already measured (%s), skipped", dest)
        return dest / "speed.csv"
    rows, skipped = measure_speed(models, settings, progress=progress)
    sizes = {k: tuple(cfg.speed.image_size or m.config.input_size) for k, m in models.items()}
    summary = summarize_speed(rows, settings, cfg.baseline_label, sizes)
    write_csv(rows, ROUND_FIELDS, dest / "rounds.csv")
    path = write_csv(summary, SPEED_FIELDS, dest / "speed.csv")
    wall = time.time() - t0
    _write_marker(dest, {"fingerprint": fp, "status": "done", "settings": settings.model_dump(mode="json"),
                         "sources": sources, "skipped_backends": skipped,
                         "wall_s": round(wall, 2), "machine": machine_info()})
    _record_time(cfg, "speed", wall, len(rows), command)
    return path


# ---------------------------------------------------------------------- all
def run_ablation(
    cfg: AblationConfig, stages: Sequence[str] = ("all",), progress: bool = True, command: str | None = None
) -> dict[str, Any]:
    """Run the requested stages in pipeline order.

    Args:
        cfg: The ablation.
        stages: Names from :data:`STAGES`, or ``"all"`` (every stage enabled in the config, then
            the report).
        progress: Show tqdm bars.
        command: The command line to print in the report.

    Returns:
        ``{stage: what it returned}``.

    Raises:
        ValueError: unknown stage names, or a stage's own errors.
    """
    from .report import write_report

    stages = list(stages)
    bad = [s for s in stages if s not in (*STAGES, "all")]
    if bad:
        raise ValueError(f"unknown stage(s) {bad}; valid: {', '.join((*STAGES, 'all'))}")
    if "all" in stages:
        todo = ["train"] + [
            s for s, on in (("evaluate", cfg.evaluate.enabled), ("robustness", cfg.robustness.enabled),
                            ("speed", cfg.speed.enabled)) if on
        ] + ["report"]
    else:
        todo = [s for s in STAGES if s in stages]
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    fns = {"train": train_stage, "evaluate": evaluate_stage, "robustness": robustness_stage, "speed": speed_stage}
    for stage in todo:
        log.info("ablation stage %s", stage)
        if stage == "report":
            out[stage] = write_report(cfg, command=command)
        else:
            out[stage] = fns[stage](cfg, progress=progress, command=command)
    return out
