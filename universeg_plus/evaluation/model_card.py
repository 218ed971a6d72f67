"""The model card (``README.md``) of a weights folder, from a template and an evaluation summary.

    from universeg_plus.evaluation import read_csv, write_model_card
    write_model_card("weights/universeg-v1", read_csv("eval/v1/summary.csv"), data_root="/data/tasks",
                     eval_command="universeg-plus evaluate --model universeg-v1 --weights weights/universeg-v1 ...")

Everything stated comes from files: ``config.json`` (architecture), ``model.safetensors``
(parameter count, size), ``training.json`` (training datasets, steps, device, wall time, run config)
and each dataset's ``meta.json`` (source and licence).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from .holdout import read_training_info
from ..io.atomic import atomic_write_text
from .report import default_headline_support, headline, markdown_table, table_notes

__all__ = ["TARGET_DICE", "license_flags", "render_model_card", "write_model_card"]

#: Issue 5's target: mean Dice at S=16 on held-out tasks.
TARGET_DICE = 0.70

_NC = re.compile(r"non[- ]?commercial|\bNC\b|BY-NC", re.IGNORECASE)
_RESEARCH = re.compile(r"research (use|only)|for research|keep internal|after request|resource-specific", re.IGNORECASE)

_TEMPLATE = Template(
    """---
library_name: universeg_plus
license: other
license_name: inherits-training-data-terms
tags:
- medical-imaging
- image-segmentation
- in-context-learning
- few-shot
- universeg
---

# $title

UniverSeg-style in-context segmentation weights: give a few labelled examples of a new task (the
support set) and the network segments new images of that task, with no retraining.
Trained and evaluated with universeg_plus; for research, not for clinical use.

```python
from universeg_plus import create_model, from_pretrained

model = from_pretrained("<this folder>")                # or, where these are the shipped weights:
model = create_model("$model_name", pretrained=True)
```

## Architecture

- variant: `$model_name`; $num_params parameters; `model.safetensors` $file_mb MB
- input: images and support labels at $input_size (H x W), images in [0, 1], labels in {0, 1}
- config (`config.json`):

```json
$config_json
```

## Training

- steps: $steps; hardware: $hardware; wall time: $wall_time
$training_lines
## Training data and licences

The weights are derived from the data below and inherit its terms: $inherit

$train_table
## Evaluation on held-out tasks

None of these tasks (datasets) was used in training; the split is by task, never by image.
$eval_settings
$headline

$eval_table
$eval_notes
Reproduce: `$eval_command`

$eval_licences
## Limitations

- Evaluated at $input_size on $n_eval_tasks held-out binary tasks with few targets each: the
  standard deviations above are over targets, and a different seed draws different targets and
  support sets.
- Tasks unlike both the training and the evaluation tasks are untested: measure Dice on a few
  labelled images of your own task before relying on the output.
"""
)


def license_flags(text: str) -> list[str]:
    """``["non-commercial"]``, ``["research-only"]``, both or neither, from a licence statement."""
    flags = []
    if _NC.search(text):
        flags.append("non-commercial")
    if _RESEARCH.search(text):
        flags.append("research-only")
    return flags


def _meta(data_root: str | os.PathLike | None, dataset: str) -> dict[str, Any]:
    if data_root is None:
        return {}
    path = Path(data_root) / dataset / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from exc
    return meta if isinstance(meta, dict) else {}


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def _dataset_table(datasets: Sequence[str], data_root: str | os.PathLike | None) -> tuple[str, set[str]]:
    """Markdown table of datasets with source and licence, and the union of their licence flags."""
    if not datasets:
        return "_none_\n", set()
    lines = ["| dataset | modality | source | licence | terms |", "|---|---|---|---|---|"]
    flags: set[str] = set()
    for d in datasets:
        meta = _meta(data_root, d)
        lic = meta.get("license", "unknown (no meta.json found)")
        f = license_flags(str(lic)) if "license" in meta else ["unknown"]
        flags.update(f)
        lines.append(
            f"| {d} | {_cell(meta.get('modality', ''))} | {_cell(meta.get('dataset', ''))} | {_cell(lic)} | "
            f"{', '.join(f) or 'open'} |"
        )
    return "\n".join(lines) + "\n", flags


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "not recorded"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min {rem % 60:02d} s"


def _training_lines(info: dict[str, Any]) -> str:
    run = info.get("run") or {}
    ep, optim, data = run.get("episodes") or {}, run.get("optim") or {}, run.get("data") or {}
    lines = []
    if ep:
        lines.append(
            f"- episodes: batch {ep.get('batch_size')}, support size S drawn from "
            f"{ep.get('s_min')}..{ep.get('s_max')}, {ep.get('num_targets')} target(s) each"
        )
    if optim:
        lines.append(
            f"- optimiser: AdamW lr {optim.get('lr')}, weight decay {optim.get('weight_decay')}, "
            f"{optim.get('warmup_steps')} warm-up steps then cosine; loss {optim.get('dice_weight')} x soft Dice + "
            f"{optim.get('bce_weight')} x BCE; gradient clipping {optim.get('grad_clip')}"
        )
    syn = info.get("synthetic_prob", data.get("synthetic_prob"))
    if syn is not None:
        lines.append(f"- share of synthetic tasks (generated on the fly): {float(syn):.0%}")
    sp = info.get("superpixel_prob", data.get("superpixel_prob"))
    if sp:
        lines.append(f"- share of superpixel pseudo-tasks: {float(sp):.0%}")
    if info.get("world_size", 1) not in (None, 1):
        lines.append(f"- processes: {info['world_size']} (DistributedDataParallel)")
    if "val_dice" in info:
        where = ", ".join(info.get("validation_datasets") or []) or "the datasets in data.val_tasks"
        lines.append(
            f"- selected at the step with the best quick validation Dice ({float(info['val_dice']):.3f}) on the "
            f"validation datasets ({where}), never on the held-out ones"
            if info.get("validation_datasets")
            else f"- selected at the step with the best quick validation Dice ({float(info['val_dice']):.3f})"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def render_model_card(
    weights_dir: str | os.PathLike,
    summary: Sequence[dict[str, Any]],
    data_root: str | os.PathLike | None = None,
    eval_command: str = "",
    model_name: str | None = None,
    hardware: str | None = None,
    title: str | None = None,
    headline_support: int | None = None,
) -> str:
    """The model card text.

    Args:
        weights_dir: Folder with ``config.json`` and ``model.safetensors`` (and ``training.json``).
        summary: Rows of ``summary.csv`` (:func:`~universeg_plus.evaluation.report.read_csv`).
        data_root: Folder of the task folders, for each dataset's ``meta.json`` licence.
        eval_command: The command that produced ``summary``.
        model_name: Registered variant (default: ``training.json``'s ``model_name``).
        hardware: Training hardware (default: from ``training.json``).
        title: Card heading.
        headline_support: S of the headline figure (default 16, or the largest S evaluated).

    Raises:
        FileNotFoundError: missing ``config.json`` or weights.
        ValueError: invalid config or weights.
    """
    from ..hub import read_config, read_weights

    folder = Path(weights_dir)
    config = read_config(folder / "config.json")
    state = read_weights(folder / "model.safetensors")
    num_params = sum(v.numel() for v in state.values())
    info = read_training_info(folder) or {}
    name = model_name or info.get("model_name") or "unknown"
    if hardware is None:
        device = info.get("device")
        hardware = "not recorded" if device is None else ("CPU" if device == "cpu" else str(device))
    train_ds = list(info.get("train_datasets") or [])
    train_table, train_flags = _dataset_table(train_ds, data_root)
    if "non-commercial" in train_flags:
        inherit = "**non-commercial use only** (at least one dataset is licensed non-commercially)."
    elif "research-only" in train_flags or "unknown" in train_flags:
        inherit = "**research use** (at least one dataset restricts use to research or has no stated licence)."
    elif train_ds:
        inherit = "the open licences listed (keep their attribution notices)."
    else:
        inherit = "no real datasets are recorded in `training.json`."
    eval_ds = list(dict.fromkeys(r["dataset"] for r in summary))
    eval_table_ds, _ = _dataset_table(eval_ds, data_root)
    if headline_support is None:
        headline_support = default_headline_support(summary)
    h = headline(summary, headline_support)
    lines = []
    if h["tasks"]:
        main = h["mean_dice"].get("universeg")
        lines.append(
            f"At S={headline_support}, mean Dice over {h['tasks']} held-out tasks: "
            + ", ".join(f"{m} {v:.3f}" for m, v in h["mean_dice"].items())
            + "."
        )
        if h["compared"]:
            lines.append(
                "Ahead of the per-task U-Net on "
                + ", ".join(f"{k} of {h['compared']} tasks ({m})" for m, k in h["wins"].items())
                + "."
            )
        if main is not None and headline_support == 16:
            met = main >= TARGET_DICE and (not h["compared"] or h["wins"].get("universeg", 0) * 2 > h["compared"])
            lines.append(
                f"Project target (mean Dice >= {TARGET_DICE:.2f} at S=16, ahead of the U-Net on most tasks): "
                + ("met." if met else "**not met**.")
            )
    sizes = sorted({int(r["n_targets"]) for r in summary})
    n_t = "" if not sizes else str(sizes[0]) if sizes[0] == sizes[-1] else f"{sizes[0]}..{sizes[-1]}"
    settings = f"Targets per task: {n_t}; Dice is mean ± std over targets." if sizes else ""
    return _TEMPLATE.substitute(
        title=title or f"universeg_plus {name}",
        model_name=name,
        num_params=f"{num_params:,}",
        file_mb=f"{(folder / 'model.safetensors').stat().st_size / 1e6:.1f}",
        input_size=f"{config.input_size[0]}x{config.input_size[1]}",
        config_json=json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True),
        steps=info.get("step", "not recorded"),
        hardware=hardware,
        wall_time=_duration(info.get("elapsed_s")),
        training_lines=_training_lines(info),
        inherit=inherit,
        train_table=train_table,
        eval_settings=settings,
        headline=" ".join(lines) or "_no evaluation rows_",
        eval_table=markdown_table(summary),
        eval_notes=table_notes(summary),
        eval_command=eval_command or "not recorded",
        eval_licences="Evaluation data:\n\n" + eval_table_ds,
        n_eval_tasks=h["tasks"] or len({r["task"] for r in summary}),
    )


def write_model_card(
    weights_dir: str | os.PathLike,
    summary: Sequence[dict[str, Any]],
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    **kwargs: Any,
) -> Path:
    """Render (see :func:`render_model_card`) and write the card atomically, by default to
    ``<weights_dir>/README.md``. Returns the path written."""
    text = render_model_card(weights_dir, summary, data_root, **kwargs)
    return atomic_write_text(Path(out) if out is not None else Path(weights_dir) / "README.md", text)
