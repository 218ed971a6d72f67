"""The held-out episode protocol: disjoint targets/support, nesting, caps, seeds."""

from __future__ import annotations

import pytest
import torch

from universeg_plus.data.tasks import BinaryTask
from universeg_plus.evaluation.protocol import make_episodes


def _task(name: str, n: int) -> BinaryTask:
    g = torch.Generator().manual_seed(n)
    images = torch.rand(n, 1, 8, 8, generator=g)
    return BinaryTask(name, name.split("/")[0], (1,), images, (images > 0.5).float(), [f"s{i}" for i in range(n)])


def test_targets_never_in_support_and_supports_nested() -> None:
    tasks = [_task("a/x", 30), _task("b/y", 9)]
    eps = make_episodes(tasks, support_sizes=(1, 4, 16, 64), num_targets=10, ensemble=4, ensemble_max_support=16)
    assert [(e.task, e.requested_support) for e in eps] == [(t.name, s) for t in tasks for s in (1, 4, 16, 64)]
    for e in eps:
        for sup in e.supports:
            assert not set(sup) & set(e.targets)
            assert len(sup) == e.support_size == len(set(sup))
    a = [e for e in eps if e.task == "a/x"]
    # 30 pairs: 10 targets, pool of 20; S=64 is capped at 20 and reported as such
    assert len(a[0].targets) == 10
    assert [e.support_size for e in a] == [1, 4, 16, 20]
    assert all(e.targets == a[0].targets for e in a)
    for small, big in zip(a, a[1:]):
        assert big.supports[0][: small.support_size] == small.supports[0]
    # ensembles only for S <= 16 and only when the pool has more than S candidates
    assert [e.ensemble for e in a] == [4, 4, 4, 1]
    b = [e for e in eps if e.task == "b/y"]
    # 9 pairs: at most half (4) are targets, 5 support candidates
    assert len(b[0].targets) == 4 and [e.support_size for e in b] == [1, 4, 5, 5]
    assert [e.ensemble for e in b] == [4, 4, 1, 1]


def test_seeded_and_independent_of_other_tasks() -> None:
    a, b = _task("a/x", 20), _task("b/y", 12)
    one = make_episodes([a, b], (2, 8), num_targets=5, ensemble=3, seed=7)
    again = make_episodes([a, b], (2, 8), num_targets=5, ensemble=3, seed=7)
    alone = make_episodes([a], (2, 8), num_targets=5, ensemble=3, seed=7)
    other = make_episodes([a, b], (2, 8), num_targets=5, ensemble=3, seed=8)
    assert one == again
    assert one[:2] == alone
    assert [e.targets for e in one] != [e.targets for e in other]


def test_tiny_tasks_skipped_and_bad_arguments() -> None:
    assert make_episodes([_task("a/x", 1)], (1,)) == []
    eps = make_episodes([_task("a/x", 2)], (1, 4))
    assert [(len(e.targets), e.support_size) for e in eps] == [(1, 1), (1, 1)]
    with pytest.raises(ValueError, match="support sizes"):
        make_episodes([_task("a/x", 5)], (0, 4))
    with pytest.raises(ValueError, match="at least one size"):
        make_episodes([_task("a/x", 5)], ())
    with pytest.raises(ValueError, match="num_targets"):
        make_episodes([_task("a/x", 5)], (1,), num_targets=0)
    with pytest.raises(ValueError, match="max_target_fraction"):
        make_episodes([_task("a/x", 5)], (1,), max_target_fraction=1.0)
