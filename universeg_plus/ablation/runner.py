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

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io.hashing import sha256_file
from .config import AblationConfig, run_label
from .records import (
    MARKER_NAME,
    check_marker,
    fingerprint,
    machine_info,
    read_marker,
    record_time,
    write_marker,
)

__all__ = [
    "MARKER_NAME",
    "STAGES",
    "check_data",
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
# train settings that do not change what is trained (a run may resume with other values)
_RUNTIME_TRAIN_KEYS = ("progress", "resume", "max_minutes", "stop_at", "num_threads", "log_every", "ckpt_every")


# ---------------------------------------------------------------------- helpers
def grid(cfg: AblationConfig) -> list[tuple[str, int]]:
    """``(variant label, seed)`` pairs in run order (seed-major, so every variant gets seed 0 first)."""
    return [(label, seed) for seed in cfg.seeds for label in cfg.labels]


def train_fingerprint(cfg: AblationConfig, label: str, seed: int) -> str:
    """Hash of everything that decides what a (variant, seed) run trains."""
    data = cfg.run_config(label, seed).model_dump(mode="json")
    for k in _RUNTIME_TRAIN_KEYS:
        data["train"].pop(k, None)
    return fingerprint(data)


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


# ---------------------------------------------------------------------- data
_DATA_HINT = "configs read the task folders from $UNIVERSEG_PLUS_TASKS (default ../shared/data/tasks)"


def _missing(root: Path, names: Sequence[str]) -> list[str]:
    return [n for n in names if not (root / n / "images").is_dir()]


def _eval_dataset_names(cfg: AblationConfig) -> tuple[list[str], bool]:
    """``(datasets, requested)``: ``evaluate.tasks``' datasets (all needed), else the held-out ones
    (those present are used)."""
    if cfg.evaluate.tasks:
        return sorted({t.split("/", 1)[0] for t in cfg.evaluate.tasks}), True
    d = cfg.base_run_config().data
    return [v for v in d.held_out if v not in d.exclude], False


def _check_folders(root: Path, names: list[str], requested: bool, stage: str) -> None:
    missing = _missing(root, names)
    if (missing and requested) or len(missing) == len(names):
        raise FileNotFoundError(f"{stage}: no task folder {', '.join(missing)} under data.root {root}; {_DATA_HINT}")


def check_data(cfg: AblationConfig, stages: Sequence[str]) -> None:
    """Check that the data the given stages need is there, before any of them starts.

    ``train`` (while a run is unfinished) needs ``data.root``/``data.tasks_file`` when set;
    ``evaluate`` needs the evaluation datasets (``evaluate.tasks``, else at least one held-out
    dataset) under ``data.root`` or a ``data.tasks_file``; ``robustness`` needs its task folders
    (by default the evaluation datasets under ``data.root``).

    Raises:
        FileNotFoundError: a missing ``data.root``, ``data.tasks_file`` or task folder (named).
        ValueError: a stage needs task folders and the train config has no data source.
    """
    d = cfg.base_run_config().data
    root = Path(d.root) if d.root is not None else None
    training = "train" in stages and not all(is_trained(cfg, *run) for run in grid(cfg))
    evaluating = "evaluate" in stages
    if (training or evaluating) and d.tasks_file is not None and not Path(d.tasks_file).is_file():
        raise FileNotFoundError(f"data.tasks_file {d.tasks_file} does not exist")
    if (training or evaluating) and root is not None and d.tasks_file is None and not root.is_dir():
        raise FileNotFoundError(f"data.root {root} does not exist; {_DATA_HINT}")
    if evaluating and d.tasks_file is None:
        if root is None:
            raise ValueError("evaluate needs data.root or data.tasks_file in the train config (held-out task folders)")
        _check_folders(root, *_eval_dataset_names(cfg), "evaluate")
    if "robustness" in stages:
        if cfg.robustness.tasks is None:
            if root is None:
                raise ValueError("robustness.tasks is needed when the train config has no data.root (task folders)")
            _check_folders(root, *_eval_dataset_names(cfg), "robustness")
        for t in cfg.robustness.tasks or ():
            if t.dataset is not None and root is None:
                raise ValueError(f"robustness task {t.dataset!r} is a dataset under data.root, but there is none")
            folder = root / t.dataset if t.dataset is not None else Path(t.path)
            if not (folder / "images").is_dir():
                raise FileNotFoundError(f"robustness: task folder {folder} (with images/) does not exist; {_DATA_HINT}")


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

    from ..evaluation.holdout import read_training_info
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
        check_marker(run, marker, fp, "a training run")
        if is_trained(cfg, label, seed):
            log.info("%s: already trained (%s), skipped", run_label(label, seed), run)
            out.append({"variant": label, "seed": seed, "status": "skipped", "step": marker.get("step"), "wall_s": 0.0})
            continue
        run.mkdir(parents=True, exist_ok=True)
        write_marker(run, {"fingerprint": fp, "status": "running", "variant": label, "seed": seed})
        run_cfg = cfg.run_config(label, seed, progress=None if progress else False)
        log.info("%s: training %d steps into %s", run_label(label, seed), run_cfg.train.steps, run)
        summary = train(run_cfg)
        work += 1
        status = "done" if summary["stopped"] == "done" else summary["stopped"]
        info = read_training_info(run / "model") or {}
        write_marker(
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
    record_time(cfg, "train", time.time() - t0, work, command)
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
    held_out = [v for v in d.held_out if v not in d.exclude]
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
            f"none of the held-out datasets {held_out} is in the data; set evaluate.tasks or data.held_out"
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
    from ..devices import resolve_device

    return str(resolve_device(name))


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
    from ..model import UniverSegPlus

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
        fp = fingerprint(
            {"settings": s.settings.model_dump(mode="json"), "tasks": s.tasks, "weights": s.weights,
             "digest": sha256_file(weights / "model.safetensors")}
        )
        marker = read_marker(dest)
        if marker is not None and marker.get("fingerprint") == fp and (dest / "summary.csv").is_file():
            out.append({"variant": label, "seed": seed, "status": "skipped", "wall_s": 0.0})
            continue
        t1 = time.time()
        model = load_folder(weights, model_cls=UniverSegPlus)
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
        write_marker(dest, {"fingerprint": fp, "status": "done", "variant": label, "seed": seed,
                             "tasks": [t.name for t in tasks], "wall_s": round(wall, 2)})
        log.info("%s: evaluated %d task(s) in %.1f s -> %s", run_label(label, seed), len(tasks), wall, dest)
        out.append({"variant": label, "seed": seed, "status": "done", "wall_s": wall})
    bar.close()
    record_time(cfg, "evaluate", time.time() - t0, work, command)
    return out


# ---------------------------------------------------------------------- robustness
def robustness_study_config(cfg: AblationConfig, runs: Sequence[tuple[str, int]]) -> Any:
    """The :class:`~universeg_plus.robustness.StudyConfig` over the given trained runs (eager backend).

    Raises:
        ValueError: a task by ``dataset`` without ``data.root``, or an invalid study.
    """
    from ..robustness import load_study_config
    from ..robustness.config import GridSettings

    r = cfg.robustness
    base = cfg.base_run_config()
    root = base.data.root
    specs = r.tasks
    if specs is None:
        if root is None:
            raise ValueError("robustness.tasks is needed when the train config has no data.root (task folders)")
        names, _ = _eval_dataset_names(cfg)
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
    grid_settings = {k: getattr(r, k) for k in GridSettings.model_fields}
    data = {
        **grid_settings,
        "tasks": specs_data,
        "models": models,
        "backends": ["eager"],
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
    record_time(cfg, "robustness", time.time() - t0, result.rows_written, command)
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
    from ..hub import load_folder
    from ..io.tables import write_csv
    from ..model import UniverSegPlus
    from ..factory import create_model
    from .speed import ROUND_FIELDS, SPEED_FIELDS, measure_speed, summarize_speed

    t0 = time.time()
    dest = Path(cfg.out_dir) / "speed"
    models, sources = {}, {}
    for label in cfg.labels:
        trained = [s for s in cfg.seeds if is_trained(cfg, label, s)]
        if trained:
            weights = cfg.run_dir(label, trained[0]) / cfg.evaluate.weights
            models[label], sources[label] = load_folder(weights, model_cls=UniverSegPlus), str(weights)
        else:
            log.info("speed: %s has no trained run; timing randomly initialised weights", label)
            v = cfg.variant(label)
            models[label], sources[label] = create_model(v.name, **cfg.variant_overrides(v)), "random init"
    settings = cfg.speed
    if settings.threads is None and cfg.threads is not None:
        settings = settings.model_copy(update={"threads": cfg.threads})
    fp = fingerprint({"settings": settings.model_dump(mode="json"), "sources": sources,
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
    write_marker(dest, {"fingerprint": fp, "status": "done", "settings": settings.model_dump(mode="json"),
                         "sources": sources, "skipped_backends": skipped,
                         "wall_s": round(wall, 2), "machine": machine_info()})
    record_time(cfg, "speed", wall, len(rows), command)
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
        FileNotFoundError: the data the stages need is missing (:func:`check_data`), before any stage starts.
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
    check_data(cfg, todo)
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
