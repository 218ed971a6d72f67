from __future__ import annotations

import pytest
import torch

from universeg_plus.data.superpixels import SuperpixelTaskSource
from universeg_plus.data.synthetic import SyntheticTaskGenerator
from universeg_plus.data.tasks import BinaryTask, TaskCollection
from universeg_plus.train.episodes import Episodes, EpisodeSampler, make_val_episodes


def _task(name: str, n: int, size: int = 8) -> BinaryTask:
    # image value k / 255 encodes the pair index, so sampled entries can be identified
    images = (torch.arange(n, dtype=torch.float32) / 255).view(n, 1, 1, 1).expand(n, 1, size, size).clone()
    masks = torch.zeros(n, 1, size, size)
    masks[:, :, :4] = 1
    return BinaryTask(name, name.split("/")[0], (1,), images, masks, [str(i) for i in range(n)])


def _ids(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 0, 0, 0] * 255).round().long()


def test_support_and_targets_are_disjoint_and_shapes():
    tasks = TaskCollection([_task("a/x", 20), _task("b/y", 30)])
    sampler = EpisodeSampler(tasks, (8, 8), batch_size=6, s_range=(3, 5), num_targets=2, synthetic_prob=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        ep = sampler.sample(g)
        s = ep.support_size
        assert 3 <= s <= 5 and ep.images.shape == (6, s + 2, 1, 8, 8)
        ids = _ids(ep.images)
        for row, tid in zip(ids, ep.task_ids):
            assert len(set(row.tolist())) == s + 2  # no repeats when the task is large enough
            assert row.max() < (20 if tid == 0 else 30)
        target, tmask, sup_i, sup_m = ep.split()
        assert target.shape == (12, 1, 8, 8) and sup_i.shape == (12, s, 1, 8, 8)
        assert torch.equal(sup_i[0], sup_i[1])  # both targets of an episode share its support


def test_small_tasks_sample_support_with_replacement_never_the_target():
    sampler = EpisodeSampler(
        TaskCollection([_task("a/x", 3)]), (8, 8), batch_size=16, s_range=(8, 8), synthetic_prob=0.0
    )
    ep = sampler.sample(torch.Generator().manual_seed(1))
    ids = _ids(ep.images)
    assert ep.support_size == 8
    for row in ids:
        assert row[-1].item() not in row[:-1].tolist()


def test_sampling_is_seeded_and_balanced_over_datasets():
    # dataset "a" has 4 label tasks, "b" one: each dataset is drawn about half the time
    tasks = TaskCollection([_task(f"a/l{i}", 5) for i in range(4)] + [_task("b/l0", 5)])
    sampler = EpisodeSampler(tasks, (8, 8), batch_size=400, s_range=(1, 1), synthetic_prob=0.0)
    e1 = sampler.sample(torch.Generator().manual_seed(2))
    e2 = sampler.sample(torch.Generator().manual_seed(2))
    assert torch.equal(e1.images, e2.images) and torch.equal(e1.task_ids, e2.task_ids)
    share_b = (e1.task_ids == 4).float().mean().item()
    assert 0.4 < share_b < 0.6


def test_synthetic_mix_and_synthetic_only():
    syn = SyntheticTaskGenerator((8, 8))
    mixed = EpisodeSampler(
        TaskCollection([_task("a/x", 5)]), (8, 8), syn, synthetic_prob=0.5, batch_size=64, s_range=(2, 2)
    )
    ep = mixed.sample(torch.Generator().manual_seed(0))
    n_syn = int((ep.task_ids == -1).sum())
    assert 16 < n_syn < 48 and ep.images.shape == (64, 3, 1, 8, 8)
    only = EpisodeSampler(None, (8, 8), syn, batch_size=2, s_range=(1, 3))
    assert (only.sample(torch.Generator()).task_ids == -1).all()
    with pytest.raises(ValueError, match="no tasks"):
        EpisodeSampler(None, (8, 8))
    with pytest.raises(ValueError, match="stored at"):
        EpisodeSampler(TaskCollection([_task("a/x", 5, size=16)]), (8, 8))


def test_val_episodes_are_fixed_and_disjoint():
    tasks = TaskCollection([_task("v/x", 10), _task("w/y", 3)])
    a = make_val_episodes(tasks, support_size=4, targets_per_task=3, seed=5)
    b = make_val_episodes(tasks, support_size=4, targets_per_task=3, seed=5)
    assert [e.name for e in a] == ["v/x", "w/y"]
    assert torch.equal(a[0].targets, b[0].targets) and torch.equal(a[0].support_images, b[0].support_images)
    t_ids, s_ids = set(_ids(a[0].targets).tolist()), set(_ids(a[0].support_images).tolist())
    assert len(t_ids) == 3 and len(s_ids) == 4 and not (t_ids & s_ids)
    assert len(a[1].targets) == 2 and a[1].support_images.shape[0] == 4  # capped targets, support with replacement
    assert not set(_ids(a[1].targets).tolist()) & set(_ids(a[1].support_images).tolist())


def test_episodes_split_single_target_is_a_view_of_the_batch():
    images = torch.rand(2, 4, 1, 8, 8)
    ep = Episodes(images, (images > 0.5).float(), 3, torch.zeros(2))
    target, _, sup_i, _ = ep.split()
    assert torch.equal(target, images[:, 3]) and torch.equal(sup_i, images[:, :3])


def test_superpixel_source_mix():
    pool = torch.rand(4, 1, 8, 8)
    sampler = EpisodeSampler(
        TaskCollection([_task("a/x", 5)]),
        (8, 8),
        SyntheticTaskGenerator((8, 8)),
        0.25,
        superpixel=SuperpixelTaskSource(pool, 4),
        superpixel_prob=0.5,
        batch_size=200,
        s_range=(2, 2),
    )
    ids = sampler.sample(torch.Generator().manual_seed(0)).task_ids
    assert 0.35 < (ids == -2).float().mean() < 0.65 and 0.1 < (ids == -1).float().mean() < 0.4
    assert (ids >= 0).any()
    with pytest.raises(ValueError, match="<= 1"):
        EpisodeSampler(
            None,
            (8, 8),
            SyntheticTaskGenerator((8, 8)),
            0.8,
            superpixel=SuperpixelTaskSource(pool),
            superpixel_prob=0.5,
        )
