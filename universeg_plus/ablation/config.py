"""The ablation configuration: one validated YAML file, overridable with ``key=value`` pairs.

    cfg = load_ablation_config("configs/ablation.yaml", overrides=["seeds=[0, 1, 2]"])
    cfg.run_config("universeg-v1-relu", seed=1)  # the RunConfig that trains that (variant, seed)

Paths (``out_dir``, ``train.config``, the data paths inside it, ``report.docs_path``) are relative
to the working directory, as in the train configs: run from the repository root.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..evaluation.runner import EvalSettings
from ..io.yaml_config import load_yaml_config, validate_config
from ..robustness.config import TVM_LEVELS, GridSettings, PerturbationNames, WhereNames, check_severities
from ..train.config import RunConfig, load_run_config

__all__ = [
    "AblationConfig",
    "EvaluateSection",
    "ReportSection",
    "RobustnessSection",
    "RobustnessTask",
    "SpeedSection",
    "TrainSection",
    "VariantSpec",
    "load_ablation_config",
    "run_label",
]


def run_label(variant: str, seed: int) -> str:
    """The name of one trained (variant, seed) in shared tables: ``"<variant>@seed<k>"``."""
    return f"{variant}@seed{seed}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantSpec(_Section):
    """One arm of the ablation.

    Attributes:
        name: Registered variant (``universeg-plus models``).
        label: Name in the results and folder names (default: ``name``).
        overrides: :class:`~universeg_plus.config.UniverSegConfig` fields applied on top of the
            shared ``model_overrides``.
    """

    name: str
    label: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """``label`` or ``name``."""
        return self.label or self.name

    @field_validator("label")
    @classmethod
    def _check_label(cls, v: str | None) -> str | None:
        if v is not None and (not v or "/" in v or "@" in v or v.strip() != v):
            raise ValueError(f"label must be a non-empty name without '/', '@' or surrounding spaces, got {v!r}")
        return v


class TrainSection(_Section):
    """The shared training recipe.

    Attributes:
        config: A train YAML (see ``configs/``); its ``model``, ``seed``, ``name`` and ``out_dir`` are
            replaced per (variant, seed), everything else (data, budget, schedule) is shared.
        overrides: ``key=value`` strings applied to it, as ``universeg-plus train --set``.
        steps: If set, the step budget (``train.steps``), applied after ``overrides``.
    """

    config: str
    overrides: list[str] = Field(default_factory=list)
    steps: int | None = Field(None, ge=1)


class EvaluateSection(_Section):
    """Held-out evaluation of every trained model (the :mod:`universeg_plus.evaluation` protocol).

    Attributes:
        enabled: Run this stage with ``--stage all``.
        tasks: Datasets or ``<dataset>/<label>`` tasks; ``None`` = the run config's
            ``data.held_out`` found in its data.
        weights: ``"model"`` (the final weights; default) or ``"best"`` (best periodic validation
            Dice, measured on the validation datasets ``data.val_tasks``, not on the held-out ones).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``...
        settings: Support sizes, targets, ensembling, seed (:class:`~universeg_plus.evaluation.EvalSettings`).
    """

    enabled: bool = True
    tasks: list[str] | None = None
    weights: Literal["model", "best"] = "model"
    device: str = "auto"
    settings: EvalSettings = Field(default_factory=EvalSettings)


class RobustnessTask(_Section):
    """A task folder for the robustness study: ``dataset`` (a folder under ``data.root``) or ``path``.

    Attributes:
        dataset: Dataset folder name under the run config's ``data.root``.
        path: Any task folder (``<path>/images``, ``<path>/masks``).
        label: Foreground label (default: every non-zero label as one foreground).
        name: Name in the results (default: folder name, plus ``_label<k>``).
    """

    dataset: str | None = None
    path: str | None = None
    label: int | None = Field(None, ge=1)
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RobustnessTask:
        if (self.dataset is None) == (self.path is None):
            raise ValueError("a robustness task needs exactly one of 'dataset' (under data.root) or 'path'")
        return self


class RobustnessSection(GridSettings):
    """The robustness study on the trained models (eager backend).

    Attributes:
        enabled: Run this stage with ``--stage all``.
        tasks: Task folders; ``None`` = every evaluation dataset under ``data.root`` (all labels as
            one foreground).
        perturbations, severities, where, support_size, num_targets, threshold, seed, saliency,
            device: As in :class:`~universeg_plus.robustness.config.GridSettings`, with a smaller
            default grid, at least one severity and no saliency by default.
    """

    enabled: bool = True
    tasks: list[RobustnessTask] | None = None
    perturbations: PerturbationNames = Field(
        default_factory=lambda: ["gaussian_noise", "gaussian_blur", "label_noise"], min_length=1
    )
    severities: Annotated[list[int], AfterValidator(partial(check_severities, allow_empty=False))] = Field(
        default_factory=lambda: [1, 3, 5]
    )
    where: WhereNames = Field(default_factory=lambda: ["target", "support"])
    saliency: bool = False


class SpeedSection(_Section):
    """Inference speed per variant: ms per target, eager and compiled, in interleaved rounds.

    Attributes:
        enabled: Run this stage with ``--stage all``.
        support_size: S of the timed calls.
        image_size: ``(H, W)``; ``None`` = each model's ``input_size``.
        batch_size: Targets per call.
        rounds: Timed rounds; each round times every (variant, backend) once, in a rotating order.
        calls_per_round: Calls per (variant, backend) and round (their mean is the round's value).
        warmup: Untimed calls per (variant, backend) before the first round.
        tvm_levels: TVM levels to compile (``[]``: eager only); skipped with a warning without TVM.
        threads: torch CPU threads for the measurement (``None``: leave as is).
    """

    enabled: bool = True
    support_size: int = Field(16, ge=1)
    image_size: tuple[int, int] | None = None
    batch_size: int = Field(1, ge=1)
    rounds: int = Field(7, ge=1)
    calls_per_round: int = Field(3, ge=1)
    warmup: int = Field(2, ge=0)
    tvm_levels: list[str] = Field(default_factory=list)
    threads: int | None = Field(None, ge=1)

    @field_validator("tvm_levels")
    @classmethod
    def _check_levels(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x not in TVM_LEVELS]
        if bad:
            raise ValueError(f"tvm_levels must be among {TVM_LEVELS}, got {bad}")
        return list(dict.fromkeys(v))


class ReportSection(_Section):
    """Where the markdown report goes besides ``<out_dir>/ablation.md``.

    Attributes:
        docs_path: Also write the report here (e.g. ``docs/ablation.md``); its plots are copied to
            ``<docs folder>/images/<docs file stem>/``. ``None``: only under ``out_dir``.
        title: Heading of the report.
    """

    docs_path: str | None = None
    title: str = "Ablation study"


class AblationConfig(_Section):
    """The whole ablation: variants x seeds trained under one recipe, then evaluated.

    Attributes:
        name: Name of the study.
        out_dir: Output folder (``runs/``, ``eval/``, ``robustness/``, ``speed/``, CSVs, plots, report).
        variants: Registered names or :class:`VariantSpec` mappings; at least two.
        baseline: Label of the variant the others are compared with (default: the first).
        model_overrides: Config fields applied to every variant (e.g. width and input size).
        seeds: Training seeds, at least two (spread over seeds is what tells a difference from noise).
        threads: torch CPU threads for every stage (training's ``train.num_threads`` included;
            ``None``: leave as is). On cores another job is using, 1 can be much faster than 2.
        train: The shared training recipe.
        evaluate, robustness, speed, report: The later stages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    name: str = "ablation"
    out_dir: str = "runs/ablation"
    variants: list[VariantSpec] = Field(min_length=2)
    baseline: str | None = None
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(min_length=2)
    threads: int | None = Field(None, ge=1)
    train: TrainSection
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    robustness: RobustnessSection = Field(default_factory=RobustnessSection)
    speed: SpeedSection = Field(default_factory=SpeedSection)
    report: ReportSection = Field(default_factory=ReportSection)

    @field_validator("variants", mode="before")
    @classmethod
    def _names_to_specs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds has duplicates: {v}")
        if any(s < 0 for s in v):
            raise ValueError(f"seeds must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> AblationConfig:
        from ..registry import get_config

        labels = [v.display_name for v in self.variants]
        if len(set(labels)) != len(labels):
            raise ValueError(f"variants: labels must be unique (set 'label'), got {labels}")
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(f"baseline {self.baseline!r} is not one of the variants' labels {labels}")
        for i, v in enumerate(self.variants):
            try:
                get_config(v.name, **self.variant_overrides(v))
            except ValueError as exc:
                raise ValueError(f"variants[{i}] ({v.display_name}): {exc}") from None
        return self

    # ------------------------------------------------------------------ derived
    @property
    def baseline_label(self) -> str:
        """The baseline variant's label."""
        return self.baseline or self.variants[0].display_name

    @property
    def labels(self) -> list[str]:
        """Variant labels in config order."""
        return [v.display_name for v in self.variants]

    def variant(self, label: str) -> VariantSpec:
        """The variant with this label.

        Raises:
            ValueError: no such label.
        """
        for v in self.variants:
            if v.display_name == label:
                return v
        raise ValueError(f"unknown variant {label!r}; variants: {', '.join(self.labels)}")

    def variant_overrides(self, variant: VariantSpec) -> dict[str, Any]:
        """Shared ``model_overrides`` updated with the variant's own."""
        return {**self.model_overrides, **variant.overrides}

    def run_dir(self, label: str, seed: int) -> Path:
        """``<out_dir>/runs/<label>/seed<k>``."""
        return Path(self.out_dir) / "runs" / label / f"seed{seed}"

    def eval_dir(self, label: str, seed: int) -> Path:
        """``<out_dir>/eval/<label>/seed<k>``."""
        return Path(self.out_dir) / "eval" / label / f"seed{seed}"

    def base_run_config(self) -> RunConfig:
        """The shared train config with ``train.overrides`` applied.

        Raises:
            FileNotFoundError: ``train.config`` does not exist.
            ValueError: it is invalid.
        """
        extra = [f"train.steps={self.train.steps}"] if self.train.steps is not None else []
        return load_run_config(self.train.config, [*self.train.overrides, *extra])

    def run_config(self, label: str, seed: int, progress: bool | None = None) -> RunConfig:
        """The :class:`RunConfig` that trains one (variant, seed) into :meth:`run_dir` (resuming).

        Args:
            label: Variant label.
            seed: Training seed.
            progress: Override ``train.progress`` (``None``: keep the base config's).

        Raises:
            ValueError: unknown label, or the resulting config is invalid.
        """
        v = self.variant(label)
        data = self.base_run_config().model_dump(mode="json")
        data["name"] = f"{self.name}-{run_label(label, seed)}"
        data["out_dir"] = str(self.run_dir(label, seed))
        data["seed"] = seed
        data["model"] = {"name": v.name, "overrides": self.variant_overrides(v)}
        data["train"]["resume"] = "auto"
        if self.threads is not None:
            data["train"]["num_threads"] = self.threads
        if progress is not None:
            data["train"]["progress"] = progress
        return validate_config(RunConfig, data, "ablation config", f"train config for {run_label(label, seed)}")


def load_ablation_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
) -> AblationConfig:
    """Read a YAML ablation config (or take ``data``), apply ``key=value`` overrides, expand
    ``${VAR}`` / ``${VAR:-default}`` and validate (see :mod:`universeg_plus.io.yaml_config`).

    The shared train config is loaded too, so that its problems show up before any training.

    Raises:
        FileNotFoundError: the file (or ``train.config``) does not exist.
        ValueError: bad YAML, an unset environment variable, unknown keys or invalid values (each
            listed with its key).
    """
    cfg = load_yaml_config(AblationConfig, path, overrides, data, what="ablation config")
    for label in cfg.labels:  # every (variant, seed) must give a valid run config
        cfg.run_config(label, cfg.seeds[0])
    return cfg
