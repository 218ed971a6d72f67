"""ThreadGovernor: picks the fastest thread count from step timings, follows a change of load, restores
the caller's count; adaptation and the U-Net use it. A fake clock makes the timings exact."""

from __future__ import annotations

import pytest
import torch

from universeg_plus.adapt import adapt_model
from universeg_plus.cpu_threads import ThreadGovernor, available_cores, other_runnable


class FakeClock:
    """Each step costs ``cost(step, threads)`` seconds of fake time."""

    def __init__(self, cost) -> None:
        self.t = 0.0
        self.cost = cost
        self.step = 0
        self.started = False

    def __call__(self) -> float:
        if self.started:  # end of a step: advance by its cost at the current thread count
            self.t += self.cost(self.step, torch.get_num_threads())
            self.step += 1
        self.started = not self.started
        return self.t


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def _run(gov: ThreadGovernor, n: int) -> list[int]:
    seen = []
    for _ in gov.steps(n):
        seen.append(torch.get_num_threads())
    return seen


def test_busy_machine_moves_to_one_thread_and_restores(two_threads) -> None:
    clock = FakeClock(lambda step, t: 1.2 if t == 2 else 0.22)  # 2 threads stall beside another process
    gov = ThreadGovernor(2, probe_every=10, probe_steps=2, clock=clock, load=None)
    seen = _run(gov, 40)
    assert gov.candidates == [2, 1]
    assert gov.choices[0] == 1 and set(gov.choices) == {1}
    # after the first probe (1 warm-up + 2 + 2 steps) the steps run at 1 thread, but for the re-probes of 2
    assert seen[5:15] == [1] * 10 and seen.count(2) <= 1 + 2 + 2 * 3
    assert torch.get_num_threads() == 2  # the caller's count is back


def test_idle_machine_keeps_all_threads(two_threads) -> None:
    gov = ThreadGovernor(2, probe_every=10, probe_steps=2, clock=FakeClock(lambda s, t: 0.09 if t == 2 else 0.17),
                         load=None)
    seen = _run(gov, 40)
    assert set(gov.choices) == {2}
    assert seen.count(1) <= 2 * 4  # the probes at 1 thread only (4 probes in 40 steps)


def test_follows_load_that_arrives_midway(two_threads) -> None:
    # idle for the first 20 steps, then a competitor appears
    gov = ThreadGovernor(2, probe_every=8, probe_steps=2, load=None, clock=FakeClock(
        lambda s, t: (0.09 if t == 2 else 0.17) if s < 20 else (1.2 if t == 2 else 0.22)))
    seen = _run(gov, 60)
    assert gov.choices[0] == 2 and gov.choices[-1] == 1
    assert seen[-5:] == [1] * 5


def test_fixed_and_single_thread_do_not_probe(two_threads) -> None:
    gov = ThreadGovernor(2, adaptive=False)
    assert gov.candidates == [2] and _run(gov, 5) == [2] * 5 and gov.history == []
    assert _run(ThreadGovernor(1), 3) == [1] * 3
    assert 1 <= available_cores()
    with pytest.raises(ValueError, match="max_threads"):
        ThreadGovernor(0)


def test_restores_threads_when_the_loop_raises(two_threads) -> None:
    gov = ThreadGovernor(2, clock=FakeClock(lambda s, t: 1.0 if t == 2 else 0.1), load=None)
    with pytest.raises(RuntimeError):
        for i in gov.steps(20):
            if i == 8:
                raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_other_processes_on_every_core_mean_one_thread_without_probing(two_threads, monkeypatch) -> None:
    import universeg_plus.cpu_threads as ct

    monkeypatch.setattr(ct, "available_cores", lambda: 2)
    busy = {"others": 1}  # one competing process: one core left
    gov = ThreadGovernor(2, probe_every=5, probe_steps=2, clock=FakeClock(lambda s, t: 1.0),
                         load=lambda: busy["others"])
    seen = []
    for i in gov.steps(30):
        seen.append(torch.get_num_threads())
        if i == 14:
            busy["others"] = 0  # it ends: both counts are probed again, the faster kept
    assert seen[:15] == [1] * 15
    assert 2 in seen[15:] and gov.choices[-1] in (1, 2)


def test_other_runnable_reads_this_machine() -> None:
    n = other_runnable()
    assert n is None or (isinstance(n, int) and n >= 0)


def test_adapt_with_fixed_threads_is_repeatable(two_threads) -> None:
    from universeg_plus import create_model

    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 32, 32, generator=g)
    masks = (images > 0.5).float()
    a = adapt_model(model, images, masks, steps=2, lr=1e-2, threads=1, progress=False)
    b = adapt_model(model, images, masks, steps=2, lr=1e-2, threads=1, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    adapt_model(model, images, masks, steps=6, lr=1e-2, progress=False)  # governed: runs, restores
    assert torch.get_num_threads() == 2
