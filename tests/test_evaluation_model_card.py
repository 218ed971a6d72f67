"""The model card generator: facts from the weights folder, licences, the target verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from universeg_plus import create_model
from universeg_plus.evaluation.model_card import license_flags, render_model_card, write_model_card
from universeg_plus.evaluation.report import summarize


def _summary(ours: list[float], unet: list[float]) -> list[dict]:
    recs = []
    for i, (a, b) in enumerate(zip(ours, unet)):
        for method, d in (("universeg", a), ("unet", b)):
            recs.append(
                {"task": f"t{i}/x", "dataset": f"t{i}", "method": method, "requested_support": 16,
                 "support_size": 16, "ensemble": 1, "target": 0, "stem": "p", "dice": d, "iou": d,
                 "sensitivity": d, "specificity": 1.0, "hd95": 1.0}
            )
    return summarize(recs)


@pytest.fixture
def folder(tmp_path) -> Path:
    from universeg_plus.hub import save_pretrained

    torch.manual_seed(0)
    d = tmp_path / "w"
    save_pretrained(create_model("universeg-tiny"), d)
    return d


def _root(tmp_path: Path, licences: dict[str, str]) -> Path:
    root = tmp_path / "data"
    for name, lic in licences.items():
        (root / name).mkdir(parents=True)
        (root / name / "meta.json").write_text(json.dumps({"license": lic, "modality": "MRI", "dataset": name.upper()}))
    return root


def test_license_flags() -> None:
    assert license_flags("HAM10000: CC BY-NC 4.0.") == ["non-commercial"]
    assert license_flags("GlaS: research use with citation; keep internal.") == ["research-only"]
    assert license_flags("MSD: CC BY-SA 4.0.") == []
    both = license_flags("CC BY-NC-SA 3.0 (non-commercial; free for research use)")
    assert both == ["non-commercial", "research-only"]


@pytest.mark.parametrize(
    ("licences", "expected"),
    [
        ({"a": "CC BY 4.0", "b": "CC BY-NC 4.0"}, "**non-commercial use only**"),
        ({"a": "CC BY 4.0", "b": "free for research use with citation"}, "**research use**"),
        ({"a": "CC BY 4.0", "b": "CC0"}, "the open licences listed"),
    ],
)
def test_training_data_terms(folder, tmp_path, licences, expected) -> None:
    info = {"train_datasets": list(licences), "model_name": "universeg-tiny"}
    (folder / "training.json").write_text(json.dumps(info))
    card = render_model_card(folder, _summary([0.8], [0.5]), data_root=_root(tmp_path, licences))
    assert f"inherit its terms: {expected}" in card
    for name, lic in licences.items():
        assert f"| {name} | MRI | {name.upper()} | {lic} |" in card


def test_target_verdict_and_missing_training_info(folder, tmp_path) -> None:
    met = render_model_card(folder, _summary([0.8, 0.75, 0.6], [0.5, 0.7, 0.7]), model_name="universeg-tiny")
    assert "mean Dice over 3 held-out tasks: universeg 0.717, unet 0.633" in met
    assert "Ahead of the per-task U-Net on 2 of 3 tasks (universeg)" in met
    assert "ahead of the U-Net on most tasks): met." in met
    low = render_model_card(folder, _summary([0.6, 0.65], [0.5, 0.5]), model_name="universeg-tiny")
    assert "**not met**" in low  # mean 0.625 < 0.70 even though it wins both
    behind = render_model_card(folder, _summary([0.9, 0.9, 0.71], [0.95, 0.95, 0.5]), model_name="universeg-tiny")
    assert "**not met**" in behind  # mean 0.837 but ahead on 1 of 3
    assert "steps: not recorded; hardware: not recorded; wall time: not recorded" in low
    out = write_model_card(folder, _summary([0.8], [0.5]), model_name="universeg-tiny")
    assert out == folder / "README.md" and out.read_text().startswith("---\nlibrary_name: universeg_plus")


def test_missing_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="config"):
        render_model_card(tmp_path, _summary([0.8], [0.5]))
