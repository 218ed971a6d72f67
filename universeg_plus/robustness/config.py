"""The study configuration: one validated YAML file describing the grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..io.yaml_config import load_yaml_config
from ..perturb import PERTURBATIONS, WHERE
from ..perturb.base import check_severity

__all__ = ["ModelSpec", "StudyConfig", "TaskSpec", "load_study_config", "parse_backend"]

TVM_LEVELS = ("O0", "O1", "O2", "O3")


def parse_backend(name: str) -> tuple[str, str | None]:
    """``"eager"`` -> ``("eager", None)``; ``"tvm-O2"`` -> ``("tvm", "O2")``."""
    if name == "eager":
        return "eager", None
    kind, _, level = name.partition("-")
    if kind == "tvm" and level in TVM_LEVELS:
        return "tvm", level
    raise ValueError(f"backend must be 'eager' or 'tvm-<level>' with level in {TVM_LEVELS}, got {name!r}")


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


class StudyConfig(_Section):
    """The study grid: models x backends x perturbations x severities x where, over tasks.

    Attributes:
        tasks: Task folders.
        models: Variants to compare.
        backends: ``"eager"`` and/or ``"tvm-O0".."tvm-O3"`` (skipped with a warning when TVM is absent).
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
        out_dir: Output folder (CSV, plots, summary); relative to the config file's folder.
        device: Torch device for eager models.
    """

    tasks: list[TaskSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    backends: list[str] = ["eager"]
    perturbations: list[str] = Field(default_factory=lambda: list(PERTURBATIONS), min_length=1)
    severities: list[int] = [1, 2, 3, 4, 5]
    where: list[Literal["target", "support_images", "support_masks", "support", "both"]] = [
        "target",
        "support_images",
        "support_masks",
        "both",
    ]
    support_size: int = Field(8, ge=1)
    num_targets: int = Field(5, ge=1)
    threshold: float = Field(0.5, gt=0, lt=1)
    seed: int = 0
    saliency: bool = True
    out_dir: str = "robustness_out"
    device: str = "cpu"

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

    @field_validator("perturbations")
    @classmethod
    def _check_perturbations(cls, v: list[str]) -> list[str]:
        bad = [n for n in v if n not in PERTURBATIONS]
        if bad:
            raise ValueError(f"unknown perturbation(s) {bad}; valid names: {', '.join(PERTURBATIONS)}")
        return v

    @field_validator("severities")
    @classmethod
    def _check_severities(cls, v: list[int]) -> list[int]:
        for s in v:
            check_severity(s)
        return sorted(set(v))

    @field_validator("where")
    @classmethod
    def _check_where(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"where needs at least one of {', '.join(WHERE)}")
        return list(dict.fromkeys(v))

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
