"""The repo's train / validation / held-out split (universeg_plus/data/splits.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from universeg_plus.data import splits
from universeg_plus.data.splits import HELD_OUT, VALIDATION, load_splits
from universeg_plus.data.tasks import DEFAULT_VAL_TASKS

TEAM_TASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tasks"


def test_the_split_is_disjoint_and_names_the_agreed_datasets():
    s = load_splits()
    assert s.held_out == DEFAULT_VAL_TASKS == HELD_OUT
    assert set(s.held_out) == {
        "mni152_brain_tissue_mri", "dsb2018_nuclei_fluo", "busi_breast_lesion_us", "msd_spleen_ct",
        "drishti_optic_disc_cup", "kvasir_polyp_endo",
    }
    assert s.validation == VALIDATION == ("acdc_cardiac_mri", "hc18_fetal_head_us", "glas_gland_he", "ms_lesion_flair_mri")
    assert len(s.train) == 15 and not (set(s.train) & set(s.validation)) and not (set(s.train) & set(s.held_out))
    assert s.split_of("glas_gland_he") == "validation" and s.split_of("msd_spleen_ct") == "held_out"
    assert s.split_of("octa_faz") == "train" and s.split_of("a_new_dataset") == "train"


@pytest.mark.skipif(not TEAM_TASKS.is_dir(), reason="the team's task collection is not on this machine")
def test_the_split_covers_the_task_collection_exactly():
    folders = {p.name for p in TEAM_TASKS.iterdir() if p.is_dir()}
    s = load_splits()
    assert set(s.train) | set(s.validation) | set(s.held_out) == folders


def test_a_dataset_in_two_splits_is_refused(tmp_path, monkeypatch):
    bad = {"train": ["a", "b"], "validation": ["b"], "held_out": ["c"]}
    (tmp_path / "splits.json").write_text(json.dumps(bad))

    class Files:
        def joinpath(self, name):
            return tmp_path / name

    monkeypatch.setattr(splits.resources, "files", lambda package: Files())
    load_splits.cache_clear()
    try:
        with pytest.raises(ValueError, match="'b' is in both 'train' and 'validation'"):
            load_splits()
    finally:
        monkeypatch.undo()
        load_splits.cache_clear()
    assert load_splits().held_out == HELD_OUT
