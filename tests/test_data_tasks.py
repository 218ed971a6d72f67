from __future__ import annotations

import numpy as np
import pytest
import torch
from task_folders import make_task

from universeg_plus.data.tasks import (
    DEFAULT_VAL_TASKS,
    BinaryTask,
    TaskCollection,
    load_nifti_task,
    load_task_folder,
    load_task_root,
    split_by_task,
)


def test_folder_labels_become_binary_tasks(tmp_path):
    make_task(tmp_path, "ds", n=5, labels=2, binary_tasks={"both": [1, 2]})
    tasks = load_task_folder(tmp_path / "ds", size=(32, 32))
    assert [t.name for t in tasks] == ["ds/structure_1", "ds/structure_2", "ds/both"]
    assert [t.labels for t in tasks] == [(1,), (2,), (1, 2)]
    for t in tasks:
        assert t.images.shape == t.masks.shape == (len(t), 1, 32, 32)
        assert t.images.dtype == torch.float32 and 0 <= t.images.min() and t.images.max() <= 1
        assert set(torch.unique(t.masks).tolist()) <= {0.0, 1.0}
        assert (t.masks.sum(dim=(1, 2, 3)) >= 1).all()
    # disjoint labels: the group's foreground is the union of its labels
    assert [len(t) for t in tasks] == [5, 5, 5]
    assert torch.equal(tasks[2].masks, torch.maximum(tasks[0].masks, tasks[1].masks))


def test_masks_match_resized_label_map(tmp_path):
    from PIL import Image

    d = tmp_path / "one"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    lab = np.zeros((64, 64), np.uint8)
    lab[16:48, 8:40] = 3
    for i in range(2):
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)).save(
            d / "images" / f"{i}.png"
        )
        Image.fromarray(lab).save(d / "masks" / f"{i}.png")
    (task,) = load_task_folder(d, size=(32, 32))
    expected = torch.zeros(32, 32)
    expected[8:24, 4:20] = 1
    assert task.name == "one/label_3"
    assert torch.equal(task.masks[0, 0], expected)
    assert task.images[0].min() == 0 and task.images[0].max() == 1


def test_min_pixels_and_min_pairs(tmp_path):
    make_task(tmp_path, "ds", n=3, labels=1)
    assert len(load_task_folder(tmp_path / "ds", (16, 16), min_pixels=10_000)) == 0
    assert len(load_task_folder(tmp_path / "ds", (16, 16), min_pairs=4)) == 0
    assert len(load_task_folder(tmp_path / "ds", (16, 16))[0]) == 3


def test_root_split_cache_and_roundtrip(tmp_path):
    root = tmp_path / "root"
    make_task(root, "train_a", seed=1)
    make_task(root, "msd_spleen_ct", labels=1, seed=2)
    coll = load_task_root(root, (24, 24), cache_dir=tmp_path / "cache")
    assert coll.datasets == ["msd_spleen_ct", "train_a"]
    train, val = split_by_task(coll)
    assert train.datasets == ["train_a"] and val.datasets == ["msd_spleen_ct"]
    assert "msd_spleen_ct" in DEFAULT_VAL_TASKS
    excluded = load_task_root(root, (24, 24), exclude=DEFAULT_VAL_TASKS)
    assert excluded.datasets == ["train_a"]
    # cache hit returns identical tensors
    (cached,) = list((tmp_path / "cache").glob("tasks-24x24-*.pt"))
    again = load_task_root(root, (24, 24), cache_dir=tmp_path / "cache")
    for a, b in zip(coll, again):
        assert a.name == b.name and torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    loaded = TaskCollection.load(cached)
    assert loaded.names == coll.names and loaded.num_pairs == coll.num_pairs


def test_root_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_task_root(tmp_path / "nope")
    make_task(tmp_path, "ds")
    with pytest.raises(ValueError, match="unknown task"):
        load_task_root(tmp_path, (16, 16), include=["missing"])
    with pytest.raises(FileNotFoundError, match="images"):
        load_task_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="size"):
        load_task_folder(tmp_path / "ds", size=(0, 16))
    (tmp_path / "bad.pt").write_bytes(b"not a task file")
    with pytest.raises(ValueError, match="cannot read task file"):
        TaskCollection.load(tmp_path / "bad.pt")


def test_mismatched_image_and_mask_sizes(tmp_path):
    from PIL import Image

    d = make_task(tmp_path, "ds", n=2)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(d / "masks" / "p00.png")
    with pytest.raises(ValueError, match="p00.png"):
        load_task_folder(d, (16, 16))


def test_binary_task_validates_shapes():
    with pytest.raises(ValueError, match="must match"):
        BinaryTask("a/b", "a", (1,), torch.zeros(2, 1, 8, 8), torch.zeros(3, 1, 8, 8))


def test_nifti_volumes_slice_into_tasks(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = np.random.default_rng(0).random((20, 24, 6)).astype(np.float32)
    lab = np.zeros((20, 24, 6), np.int16)
    lab[5:15, 6:18, 1:5] = 1
    lab[2:6, 2:8, 2:4] = 2
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / "lab.nii.gz")
    tasks = load_nifti_task(
        [tmp_path / "img.nii.gz"],
        [tmp_path / "lab.nii.gz"],
        "toy",
        axis=2,
        size=(16, 16),
        labels={1: "organ", 2: "lesion"},
    )
    assert [t.name for t in tasks] == ["toy_axis2/organ", "toy_axis2/lesion"]
    assert len(tasks[0]) == 4 and len(tasks[1]) == 2
    assert tasks[0].axis == 2 and tasks[0].images.shape == (4, 1, 16, 16)
    assert tasks[0].stems[0] == "img.nii.gz:1"
