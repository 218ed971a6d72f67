"""An autouse fixture for modules of small networks: one torch thread is as fast, and immune to
OpenMP stalls on a busy machine. Import it into a test module to use it:
``from single_thread import one_thread  # noqa: F401``."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
