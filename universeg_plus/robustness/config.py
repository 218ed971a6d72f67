"""The study configuration: one validated YAML file describing the grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..io.yaml_config import load_yaml_config
from ..perturb import PERTURBATIONS, WHERE
from ..perturb.base import check_severity

__all__ = [
    "TVM_LEVELS",
    "GridSettings",
    "ModelSpec",
    "PerturbationNames",
    "Severities",
    "StudyConfig",
    "TaskSpec",
    "WhereNames",
    "check_perturbations",
    "check_severities",
    "check_where",
    "load_study_config",
    "parse_backend",
]

TVM_LEVELS = ("O0", "O1", "O2", "O3")


def parse_backend(name: str) -> tuple[str, str | None]:
    """``"eager"`` -> ``("eager", None)``; ``"tvm-O2"`` -> ``("tvm", "O2")``."""
    if name == "eager":
        return "eager", None
    kind, _, level = name.partition("-")
    if kind == "tvm" and level in TVM_LEVELS:
        return "tvm", level
    raise ValueError(f"backend must be 'eager' or 'tvm-<level>' with level in {TVM_LEVELS}, got {name!r}")


def check_perturbations(names: list[str]) -> list[str]:
    """Perturbation names of the grid: at least one, each registered.

    Raises:
        ValueError: none, or unknown names (listed with the valid ones).
    """
    bad = [n for n in names if n not in PERTURBATIONS]
    if bad:
        raise ValueError(f"unknown perturbation(s) {bad}; valid names: {', '.join(PERTURBATIONS)}")
    if not names:
        raise ValueError(f"at least one perturbation is needed; valid names: {', '.join(PERTURBATIONS)}")
    return names


def check_severities(severities: list[int], allow_empty: bool = True) -> list[int]:
    """Severities 1..5, sorted without repeats (``[]``: the clean case only, unless ``allow_empty`` is off).

    Raises:
        ValueError: a severity outside 1..5, or none when one is needed.
    """
    if not severities and not allow_empty:
        raise ValueError("severities needs at least one value in 1..5")
    for s in severities:
        check_severity(s)
    return sorted(set(severities))


def check_where(where: list[str]) -> list[str]:
    """Inputs to perturb, without repeats.

    Raises:
        ValueError: none given.
    """
    if not where:
        raise ValueError(f"where needs at least one of {', '.join(WHERE)}")
    return list(dict.fromkeys(where))


PerturbationNames = Annotated[list[str], AfterValidator(check_perturbations)]
Severities = Annotated[list[int], AfterValidator(check_severities)]
WhereNames = Annotated[
    list[Literal["target", "support_images", "support_masks", "support", "both"]], AfterValidator(check_where)
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskSpec(_Section):
    """A task folder (``<path>/images``, ``<path>/masks``, label maps matched by stem).

    Attributes:
        path: The folder (relative paths are resolved against the config file's folder).
        name: Name in the results (default: the folder name).
        label: Foreground label to segment (default: every non-zero label as one foreground).
    """

    path: str
    name: str | None = None
    label: int | None = Field(None, ge=1)

    @property
    def display_name(self) -> str:
        return self.name or Path(self.path).name + (f"_label{self.label}" if self.label is not None else "")


class ModelSpec(_Section):
    """A model variant.

    Attributes:
        name: Registered variant (``universeg_plus.list_models()``).
        weights: Weights folder, pretrained-table name or hub repo id (``from_pretrained``); ``None``
            loads the table's pretrained weights when declared, else random weights (with a warning).
        label: Name in the results (default: ``name``).
        overrides: Config fields the variant was built with (e.g. a smaller width); random
            weights use them, and loaded weights are checked against the variant with them.
    """

    name: str
    weights: str | None = None
    label: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_overrides(self) -> ModelSpec:
        if self.overrides:
            from ..registry import get_config

            get_config(self.name, **self.overrides)  # ValueError naming the unknown/invalid field
        return self

    @property
    def display_name(self) -> str:
        return self.label or self.name


class GridSettings(_Section):
    """What a study perturbs and how it predicts (shared with the ablation's robustness stage).

    Attributes:
        perturbations: Names from ``universeg_plus.perturb.list_perturbations()``.
        severities: Severities 1..5 (a clean case, severity 0, is always added).
        where: Inputs to perturb (see ``apply_perturbation``); combinations a perturbation cannot act
            on (label noise on the target, image noise on masks only) are left out.
        support_size: Support examples per prediction (S).
        num_targets: Targets per task (the first ones of a seeded permutation; the support is drawn
            from the rest).
        threshold: Foreground probability cut-off.
        seed: Base seed for the split and every perturbation draw.
        saliency: Add the saliency RMSE column (eager only; one backward pass per row) and plot one example.
        device: Torch device for eager models: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...
    """

    perturbations: PerturbationNames = Field(default_factory=lambda: list(PERTURBATIONS), min_length=1)
    severities: Severities = [1, 2, 3, 4, 5]
    where: WhereNames = ["target", "support_images", "support_masks", "both"]
    support_size: int = Field(8, ge=1)
    num_targets: int = Field(5, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    seed: int = 0
    saliency: bool = True
    device: str = "auto"


class StudyConfig(GridSettings):
    """The study grid: models x backends x perturbations x severities x where, over tasks.

    Attributes:
        tasks: Task folders.
        models: Variants to compare.
        backends: ``"eager"`` and/or ``"tvm-O0".."tvm-O3"`` (skipped with a warning when TVM is absent).
        out_dir: Output folder (CSV, plots, summary); relative to the config file's folder.
        perturbations, severities, where, support_size, num_targets, threshold, seed, saliency,
            device: See :class:`GridSettings`.
    """

    tasks: list[TaskSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    backends: list[str] = ["eager"]
    out_dir: str = "robustness_out"

    @field_validator("backends")
    @classmethod
    def _check_backends(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one backend is needed")
        for b in v:
            parse_backend(b)
        if len(set(v)) != len(v):
            raise ValueError(f"backends has duplicates: {v}")
        return v

    @model_validator(mode="after")
    def _check_names(self) -> StudyConfig:
        for kind, names in (("task", [t.display_name for t in self.tasks]), ("model", [m.display_name for m in self.models])):
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be unique (set 'name'/'label'), got {names}")
        return self


def _resolve(path: str, base: Path) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (base / p))


def load_study_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (),
                      data: dict[str, Any] | None = None) -> StudyConfig:
    """Read a YAML study config (or take ``data``), apply ``key=value`` overrides, expand
    ``${VAR}`` / ``${VAR:-default}`` and validate (see :mod:`universeg_plus.io.yaml_config`).

    Relative task paths, weights folders that exist relative to the file, and ``out_dir`` are resolved
    against the config file's folder.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad YAML, an unset environment variable, unknown keys or invalid values (each
            problem listed with its key).
    """
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    cfg = load_yaml_config(StudyConfig, path, overrides, data, what="study config")
    tasks = [t.model_copy(update={"path": _resolve(t.path, base)}) for t in cfg.tasks]
    models = [
        m.model_copy(update={"weights": _resolve(m.weights, base)})
        if m.weights is not None and Path(_resolve(m.weights, base)).is_dir()
        else m
        for m in cfg.models
    ]
    return cfg.model_copy(update={"tasks": tasks, "models": models, "out_dir": _resolve(cfg.out_dir, base)})
