"""The held-out evaluation protocol: fixed, seeded targets and support sets per binary task.

For each task (one dataset and label), a seeded permutation of its pairs splits them once into
*targets* (the first ``min(num_targets, floor(N * max_target_fraction))``, at least one) and a
disjoint *support pool* (the rest). For each requested support size S, the support set is the first
``min(S, len(pool))`` entries of the pool, so support sets are nested across S and the actual S is
reported when the pool is smaller than asked. Ensemble members are further random S-subsets of
the same pool (never containing a target). Every task is seeded from ``(seed, task name)`` alone,
so its episodes do not depend on which other tasks are evaluated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ..data.tasks import BinaryTask

__all__ = ["DEFAULT_SUPPORT_SIZES", "Episode", "make_episodes", "task_seed"]

log = logging.getLogger(__name__)

DEFAULT_SUPPORT_SIZES: tuple[int, ...] = (1, 4, 16, 64)


@dataclass(frozen=True)
class Episode:
    """One evaluation unit: a task, a support size, its targets and its support set(s).

    Attributes:
        task: Task name (``"<dataset>/<label>"``).
        dataset: Dataset the task comes from.
        requested_support: The S that was asked for.
        support_size: The S used: ``min(requested_support, pool size)``.
        targets: Indices (into the task's pairs) of the targets; shared by every S of the task.
        supports: Index tuples of the support sets; ``supports[0]`` is the main set (used without
            ensembling and by the baseline), the others are extra ensemble members.
    """

    task: str
    dataset: str
    requested_support: int
    support_size: int
    targets: tuple[int, ...]
    supports: tuple[tuple[int, ...], ...]

    @property
    def ensemble(self) -> int:
        """Number of support sets (ensemble members)."""
        return len(self.supports)


def task_seed(seed: int, name: str, *extra: int) -> int:
    """A 63-bit seed from ``seed``, a task name and optional integers (stable across runs and machines)."""
    key = ":".join([str(int(seed)), name, *(str(int(e)) for e in extra)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & (2**63 - 1)


def _check(support_sizes: Sequence[int], num_targets: int, max_target_fraction: float, ensemble: int) -> None:
    if not support_sizes:
        raise ValueError("support_sizes must hold at least one size, got an empty sequence")
    bad = [s for s in support_sizes if not isinstance(s, int) or isinstance(s, bool) or s < 1]
    if bad:
        raise ValueError(f"support sizes must be integers >= 1, got {list(support_sizes)}")
    if num_targets < 1:
        raise ValueError(f"num_targets must be >= 1, got {num_targets}")
    if not 0.0 < max_target_fraction < 1.0:
        raise ValueError(f"max_target_fraction must be in (0, 1), got {max_target_fraction}")
    if ensemble < 1:
        raise ValueError(f"ensemble must be >= 1, got {ensemble}")


def make_episodes(
    tasks: Iterable[BinaryTask],
    support_sizes: Sequence[int] = DEFAULT_SUPPORT_SIZES,
    num_targets: int = 10,
    max_target_fraction: float = 0.5,
    ensemble: int = 1,
    ensemble_max_support: int | None = 16,
    seed: int = 0,
) -> list[Episode]:
    """Episodes for every task and support size (tasks with fewer than 2 pairs are skipped).

    Args:
        tasks: Binary tasks (e.g. a :class:`~universeg_plus.data.tasks.TaskCollection`).
        support_sizes: Requested S values, in report order.
        num_targets: Targets per task (fewer when the task is small, see ``max_target_fraction``).
        max_target_fraction: At most this fraction of a task's pairs become targets.
        ensemble: Support sets per episode for ensembling (1 = none).
        ensemble_max_support: Ensemble only when S is at most this (``None``: always). Episodes
            whose S uses the whole pool get one support set (the members would be identical).
        seed: Protocol seed.

    Returns:
        Episodes ordered by task, then by ``support_sizes``.

    Raises:
        ValueError: invalid sizes, counts or fractions.
    """
    support_sizes = list(support_sizes)
    _check(support_sizes, num_targets, max_target_fraction, ensemble)
    out: list[Episode] = []
    for task in tasks:
        n = len(task)
        if n < 2:
            log.warning("task %s has %d pair(s): needs 2 (a target and a support), skipped", task.name, n)
            continue
        g = torch.Generator().manual_seed(task_seed(seed, task.name))
        perm = torch.randperm(n, generator=g).tolist()
        n_t = max(1, min(num_targets, int(n * max_target_fraction)))
        targets, pool = tuple(perm[:n_t]), perm[n_t:]
        for req in support_sizes:
            s = min(req, len(pool))
            supports = [tuple(pool[:s])]
            use_ens = ensemble > 1 and s < len(pool) and (ensemble_max_support is None or req <= ensemble_max_support)
            if use_ens:
                for k in range(1, ensemble):
                    gk = torch.Generator().manual_seed(task_seed(seed, task.name, s, k))
                    pick = torch.randperm(len(pool), generator=gk)[:s].tolist()
                    supports.append(tuple(pool[i] for i in pick))
            out.append(Episode(task.name, task.dataset, req, s, targets, tuple(supports)))
    return out
