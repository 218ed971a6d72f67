"""Torch CPU threads for training loops on a machine that others share: chosen by timing, not by guess.

Why: torch's OpenMP runtime (libgomp) makes a thread that reaches a barrier first *spin* for a
while before it sleeps. With as many threads as cores and another CPU-bound process beside them,
one of the threads is descheduled, and every parallel region then waits a scheduler slice for it
while its partner spins. A training step is thousands of small parallel regions (the backward of
the cross-convolution especially), so it collapses: measured on 2 cores with one competing
``while True: pass``, an adaptation step went from 0.09 s (2 threads, idle machine) to 1.2 s
(2 threads, busy), while 1 thread took 0.22 s (``benchmarks/bench_adapt_cost.py --competitor``).
The wait policy (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``) is read once when the runtime loads, so a
library cannot change it after ``import torch``; the thread count it can change at any step.

:class:`ThreadGovernor` times the steps of a loop at each candidate thread count (the current
count, 1, and half of it from 4 up), keeps the fastest, and probes the others again every
``probe_every`` steps, so it follows load that comes and goes. It restores the caller's thread
count at the end. On an idle machine it costs the few probe steps at fewer threads (about 3% of an
adaptation).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

__all__ = ["ThreadGovernor", "available_cores", "other_runnable"]

log = logging.getLogger(__name__)


def other_runnable() -> int | None:
    """Threads of *other* processes that are runnable right now, where that can be read (Linux, no CPU
    affinity narrower than the machine); ``None`` otherwise.

    From ``/proc/loadavg`` (the instantaneous count of runnable threads, machine-wide) minus this
    process's own runnable threads (``/proc/self/task/*/stat``: OpenMP workers that still spin count
    there), the median of three reads 5 ms apart.
    """
    if available_cores() != (os.cpu_count() or 0):
        return None
    try:
        reads = []
        for k in range(3):
            if k:
                time.sleep(0.005)
            total = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            own = 0
            for stat in Path("/proc/self/task").glob("*/stat"):
                try:
                    own += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
                except (OSError, IndexError):
                    continue
            reads.append(max(0, total - own))
        return sorted(reads)[1]
    except (OSError, ValueError, IndexError):
        return None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class ThreadGovernor:
    """Picks torch's CPU thread count for each step of a loop by timing the steps.

    Usage::

        for step in ThreadGovernor().steps(300):
            ...  # one training step; its wall time is measured around the loop body

    Args:
        max_threads: The most threads to use (default: ``torch.get_num_threads()``, at most
            :func:`available_cores`). 1 turns the governor off (every step at 1 thread).
        probe_every: Steps at the chosen count between two probes of the other counts.
        probe_steps: Timed steps per candidate in a probe (their median is compared).
        adaptive: ``False``: every step at ``max_threads`` (a fixed count, no probing).
        clock: Seconds as a float (tests pass a fake one).
        load: Runnable threads of other processes now (default :func:`other_runnable`), or ``None``
            where unknown. A count above the cores left free by them is not probed: on a busy machine
            a probe at too many threads costs ten steps, and a short loop would spend all its steps
            there (the first, warm-up step included).

    Attributes:
        history: ``(threads, seconds)`` per timed step, in order (the first, warm-up step is not timed).
        choices: Thread count chosen after each probe, in order.
    """

    def __init__(
        self,
        max_threads: int | None = None,
        probe_every: int = 50,
        probe_steps: int = 2,
        adaptive: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        load: Callable[[], int | None] | None = other_runnable,
    ) -> None:
        if max_threads is not None and (not isinstance(max_threads, int) or max_threads < 1):
            raise ValueError(f"max_threads must be a positive integer or None, got {max_threads!r}")
        if probe_every < 1 or probe_steps < 1:
            raise ValueError(f"probe_every and probe_steps must be >= 1, got {probe_every}, {probe_steps}")
        top = max_threads if max_threads is not None else min(torch.get_num_threads(), available_cores())
        self.candidates = sorted({top, 1, *([top // 2] if top >= 4 else [])}, reverse=True) if adaptive else [top]
        self.probe_every = probe_every
        self.probe_steps = probe_steps
        self.clock = clock
        self.load = load
        self.history: list[tuple[int, float]] = []
        self.choices: list[int] = []
        self._recent = {c: deque(maxlen=probe_steps) for c in self.candidates}

    def _schedule(self, n: int) -> Iterator[tuple[int, bool]]:
        """``(threads, timed)`` for each of ``n`` steps, choosing as the timings come in."""
        if len(self.candidates) == 1:
            yield from ((self.candidates[0], False) for _ in range(n))
            return
        best = self._allowed()[0]
        done = 0
        yield best, False  # warm-up: allocations and the thread pool, not representative
        done += 1
        first = True
        while done < n:
            allowed = self._allowed()
            # first round: every allowed count; later: the others (the chosen one's latest steps are its timings)
            probe = [c for c in allowed if first or c != best]
            for c in probe:
                for _ in range(self.probe_steps):
                    if done >= n:
                        return
                    yield c, True
                    done += 1
            timed = [c for c in allowed if self._recent[c]]
            best = min(timed, key=lambda c: statistics.median(self._recent[c])) if timed else allowed[-1]
            self.choices.append(best)
            first = False
            log.debug("threads: %d (medians %s)", best,
                      {c: round(statistics.median(v), 4) for c, v in self._recent.items() if v})
            for _ in range(self.probe_every):
                if done >= n:
                    return
                yield best, True
                done += 1

    def _allowed(self) -> list[int]:
        """Candidates that fit in the cores other processes leave free now (at least 1 thread)."""
        busy = self.load() if self.load is not None else None
        if busy is None:
            return self.candidates
        free = max(1, available_cores() - busy)
        return [c for c in self.candidates if c <= free] or [self.candidates[-1]]

    def steps(self, n: int) -> Iterator[int]:
        """Yield ``0 .. n-1``, with torch's thread count set for each step; restored afterwards."""
        before = torch.get_num_threads()
        try:
            for i, (threads, timed) in enumerate(self._schedule(n)):
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                t0 = self.clock() if timed else 0.0
                yield i
                if timed:
                    dt = self.clock() - t0
                    self.history.append((threads, dt))
                    self._recent[threads].append(dt)
        finally:
            torch.set_num_threads(before)

    @property
    def chosen(self) -> int | None:
        """The thread count chosen by the last probe (``None`` before the first)."""
        return self.choices[-1] if self.choices else (self.candidates[0] if len(self.candidates) == 1 else None)
