"""Test-wide settings. Network-quiet: set before anything imports gradio or huggingface_hub."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Ray: no usage stats, and a local instance bound to 127.0.0.1 only (read when ray is first imported,
# which another test module may do before the cluster tests start one).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# One OpenMP thread, here and in every subprocess a test starts (they inherit the environment): the
# tests' networks are tiny, and two threads beside another CPU-bound process on two cores stall in
# OpenMP's barriers (tests/test_readme.py, measured on a loaded 2-core machine with a busy loop beside
# it: 588 s with two threads, 146 s with one). Set OMP_NUM_THREADS yourself to choose another count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A random-weight ``universeg-tiny`` (built under seed 0) in eval mode, one per test module."""
    from universeg_plus import create_model

    torch.manual_seed(0)
    return create_model("universeg-tiny").eval()
