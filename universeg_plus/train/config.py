"""The run configuration: one validated YAML file per run, overridable with ``key=value`` pairs.

    cfg = load_run_config("configs/tiny.yaml", overrides=["train.steps=20", "data.root=/data/tasks"])

String values may use environment variables (``root: ${UNIVERSEG_PLUS_TASKS:-../shared/data/tasks}``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..data.synthetic import SyntheticConfig
from ..data.splits import HELD_OUT, VALIDATION
from ..io.yaml_config import apply_overrides, load_yaml_config

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "EpisodeConfig",
    "ModelSection",
    "NiftiSource",
    "OptimConfig",
    "RunConfig",
    "TrainConfig",
    "ValConfig",
    "apply_overrides",
    "load_run_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """Which registered variant to train (``overrides`` are :class:`UniverSegConfig` fields)."""

    name: str = "universeg-v1"
    overrides: dict[str, Any] = Field(default_factory=dict)


class NiftiSource(_Section):
    """NIfTI volumes with label volumes: one dataset per slicing axis (``<name>_axis<k>``).

    Attributes:
        name: Dataset name (a validation dataset when it, or ``<name>_axis<k>``, is in
            ``data.val_tasks``; never loaded when in ``data.held_out`` or ``data.exclude``).
        images: Glob of image volumes (sorted; paired in order with ``labels``).
        labels: Glob of label volumes.
        axes: Slicing axes.
        label_names: Optional ``{id: name}`` for task names.
    """

    name: str
    images: str
    labels: str
    axes: tuple[int, ...] = (2,)
    label_names: dict[int, str] = Field(default_factory=dict)


class DataConfig(_Section):
    """Where episodes come from.

    Attributes:
        root: Folder of task folders (``<task>/images``, ``<task>/masks``); ``None`` = synthetic only.
        tasks_file: A task file written by ``universeg-plus train --export-tasks`` (or
            ``TaskCollection.save``), used instead of reading ``root``'s PNGs (no PIL needed).
        val_tasks: Validation datasets: quick validation, model selection (``best/``) and early
            stopping read these only; never sampled for training. Default: the ``validation`` split
            of ``universeg_plus/data/splits.json``.
        held_out: Held-out datasets, for evaluation only: never loaded by training, not even for
            validation. Default: the ``held_out`` split (``DEFAULT_VAL_TASKS``).
        exclude: Datasets never loaded at all.
        include: If set, the only datasets used for training (minus val_tasks/held_out/exclude).
        size: ``(H, W)`` training resolution; ``None`` = the model's ``input_size``.
        synthetic_prob: Probability that an episode is a synthetic task (treated as 1.0 without a root).
        min_pixels: Minimum foreground pixels (at ``size``) for a pair to join a task.
        cache_dir: Cache of the preprocessed task tensors (``None``: no cache).
        synthetic: Ranges of the synthetic task generator.
        superpixel_prob: Probability that an episode is a superpixel pseudo-task.
        superpixel_segments: Superpixels per image for those tasks.
        unlabelled_dir: Folder of unlabelled images for superpixel tasks (``None``: the training
            tasks' own images).
        nifti: NIfTI volume sources, added to the tasks from ``root``/``tasks_file``.
    """

    root: str | None = None
    tasks_file: str | None = None
    val_tasks: tuple[str, ...] = VALIDATION
    held_out: tuple[str, ...] = HELD_OUT
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] | None = None
    size: tuple[int, int] | None = None
    synthetic_prob: float = Field(0.5, ge=0.0, le=1.0)
    min_pixels: int = Field(4, ge=0)
    cache_dir: str | None = None
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    superpixel_prob: float = Field(0.0, ge=0.0, le=1.0)
    superpixel_segments: int = Field(16, ge=2)
    unlabelled_dir: str | None = None
    nifti: tuple[NiftiSource, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.include is not None:
            clash = sorted(set(self.include) & (set(self.val_tasks) | set(self.held_out) | set(self.exclude)))
            if clash:
                raise ValueError(f"data.include lists validation/held-out/excluded task(s) {clash}")
        peeking = sorted(set(self.val_tasks) & set(self.held_out))
        if peeking:
            raise ValueError(
                f"data.val_tasks lists held-out dataset(s) {peeking}: model selection must not read what "
                "evaluation scores; validate on other datasets or remove them from data.held_out"
            )
        if self.synthetic_prob + self.superpixel_prob > 1:
            raise ValueError(
                "data.synthetic_prob + data.superpixel_prob must be <= 1, got "
                f"{self.synthetic_prob} + {self.superpixel_prob}"
            )
        if (
            self.superpixel_prob > 0
            and self.unlabelled_dir is None
            and self.root is None
            and self.tasks_file is None
            and not self.nifti
        ):
            raise ValueError(
                "data.superpixel_prob > 0 needs images: data.unlabelled_dir, data.root or data.tasks_file"
            )
        if (
            self.root is None
            and self.tasks_file is None
            and not self.nifti
            and self.synthetic_prob == 0.0
            and self.superpixel_prob == 0.0
        ):
            raise ValueError("data.synthetic_prob = 0 needs data.root, data.tasks_file or data.nifti: no tasks")
        return self


class EpisodeConfig(_Section):
    """Episode batch: ``batch_size`` episodes per step (per process), support size drawn per step.

    ``s_distribution``: ``"uniform"`` over ``s_min..s_max``, or ``"log_uniform"`` (uniform in log S:
    as many steps with S in 1..4 as in 8..32, so large support sets are seen at a fraction of the cost).
    """

    batch_size: int = Field(8, ge=1)
    s_min: int = Field(1, ge=1)
    s_max: int = Field(64, ge=1)
    s_distribution: Literal["uniform", "log_uniform"] = "uniform"
    num_targets: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> EpisodeConfig:
        if self.s_min > self.s_max:
            raise ValueError(f"episodes.s_min ({self.s_min}) must be <= episodes.s_max ({self.s_max})")
        return self


class AugmentConfig(_Section):
    """Probabilities (and strengths) of the augmentations; ``task_*`` act on a whole episode
    identically, ``in_*`` on each entry independently."""

    enabled: bool = True
    task_affine: float = Field(0.5, ge=0, le=1)
    task_elastic: float = Field(0.25, ge=0, le=1)
    task_flip: float = Field(0.5, ge=0, le=1)
    task_invert: float = Field(0.2, ge=0, le=1)
    task_label_swap: float = Field(0.1, ge=0, le=1)
    task_boundary: float = Field(0.1, ge=0, le=1)
    task_morph: float = Field(0.2, ge=0, le=1)
    task_blur: float = Field(0.2, ge=0, le=1)
    task_noise: float = Field(0.2, ge=0, le=1)
    task_gamma: float = Field(0.3, ge=0, le=1)
    in_affine: float = Field(0.5, ge=0, le=1)
    in_elastic: float = Field(0.2, ge=0, le=1)
    in_blur: float = Field(0.2, ge=0, le=1)
    in_noise: float = Field(0.3, ge=0, le=1)
    in_gamma: float = Field(0.3, ge=0, le=1)
    in_brightness_contrast: float = Field(0.5, ge=0, le=1)
    affine_degrees: float = Field(25.0, ge=0)
    affine_scale: tuple[float, float] = (0.85, 1.15)
    affine_translate: float = Field(0.1, ge=0, le=0.5)
    in_affine_degrees: float = Field(8.0, ge=0)
    in_affine_scale: tuple[float, float] = (0.95, 1.05)
    in_affine_translate: float = Field(0.04, ge=0, le=0.5)
    elastic_alpha: float = Field(0.04, ge=0)
    blur_sigma: tuple[float, float] = (0.1, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.08)
    gamma: tuple[float, float] = (0.6, 1.6)
    morph_iterations: int = Field(2, ge=1)


class OptimConfig(_Section):
    """AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``."""

    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(500, ge=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    dice_weight: float = Field(1.0, ge=0)
    bce_weight: float = Field(1.0, ge=0)


class TrainConfig(_Section):
    """Loop settings.

    Attributes:
        steps: Total optimiser steps (defines the schedule).
        max_minutes: Wall-clock budget of this invocation; stops cleanly with a checkpoint.
        stop_at: End this invocation at this step (with a checkpoint), keeping the schedule of
            ``steps``; for chunked runs.
        resume: Checkpoint (``last.pt``) to continue from, or ``"auto"`` = ``<out_dir>/last.pt`` if it exists.
        init: Warm start: a weights folder (``model.safetensors`` + ``config.json``, e.g.
            ``weights/universeg-small``) whose weights initialise a new run with a fresh optimiser and
            schedule. Its architecture must be the run's; ignored when resuming a checkpoint.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        amp: ``"auto"`` (bf16 autocast on CUDA only), ``"bf16"``, ``"off"``.
        log_every, val_every, ckpt_every: Step intervals.
        num_threads: CPU threads for torch (``None``: leave as is).
        channels_last: Use channels-last memory format on CUDA.
        compile: Wrap the model in ``torch.compile``.
        progress: ``True``: a tqdm bar with the loss and Dice; ``False``: a log line (INFO) with
            them every ``log_every`` steps; ``None`` (default): the bar when stderr is a terminal,
            else the log lines.
    """

    steps: int = Field(1000, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    stop_at: int | None = Field(None, ge=1)
    resume: str | None = None
    init: str | None = None
    device: str = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    log_every: int = Field(10, ge=1)
    val_every: int = Field(200, ge=1)
    ckpt_every: int = Field(500, ge=1)
    num_threads: int | None = Field(None, ge=1)
    channels_last: bool = False
    compile: bool = False
    progress: bool | None = None


class ValConfig(_Section):
    """Quick periodic validation on the validation datasets (``data.val_tasks``, never the held-out
    ones): Dice at a fixed S, fixed episodes; picks ``best/``."""

    enabled: bool = True
    support_size: int = Field(16, ge=1)
    targets_per_task: int = Field(4, ge=1)
    max_tasks: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    seed: int = 1234


class RunConfig(_Section):
    """A whole training run."""

    name: str = "run"
    out_dir: str = "runs/run"
    seed: int = 0
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataConfig = Field(default_factory=DataConfig)
    episodes: EpisodeConfig = Field(default_factory=EpisodeConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    val: ValConfig = Field(default_factory=ValConfig)

    @model_validator(mode="after")
    def _check_model(self) -> RunConfig:
        from ..registry import get_config

        get_config(self.model.name, **self.model.overrides)  # raises ValueError naming the problem
        return self

    def model_config_resolved(self):
        """The :class:`UniverSegConfig` to build."""
        from ..registry import get_config

        return get_config(self.model.name, **self.model.overrides)

    @property
    def image_size(self) -> tuple[int, int]:
        """Training resolution: ``data.size`` or the model's ``input_size``."""
        return (
            tuple(self.data.size) if self.data.size is not None else tuple(self.model_config_resolved().input_size)
        )


def load_run_config(
    path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Read a YAML run config, apply ``key=value`` overrides, expand ``${VAR}`` / ``${VAR:-default}``
    and validate (see :mod:`universeg_plus.io.yaml_config`).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad YAML, an unset environment variable, unknown keys or invalid values (every
            problem listed with its key).
    """
    return load_yaml_config(RunConfig, path, overrides, what="run config")
