"""The README's Python snippets (and those of the docs pages they link to) run as written, in a fresh
process, with trained weights by default.

Each page's ```python blocks run in README order as one script (later blocks use the names earlier ones
define), in a process of its own. Pages whose blocks need the network (a Hugging Face repo:
docs/weights.md), a TVM build of minutes (docs/tvm.md), a Ray cluster over a dataset (docs/cluster.md) or
a person editing masks (docs/annotate.md) are left to their own tests (tests/test_hub.py,
tests/test_backends.py, tests/test_cluster.py, tests/test_annotate.py).

Budgets are capped for the test only: a prelude the test puts before the snippets makes
``Predictor.adapt`` run a few steps instead of the hundreds a user's copy asks for, and the process runs
one torch/OpenMP thread (two threads beside another CPU-bound process on two cores made the README's
snippets 10-15x slower here). So the test takes seconds, not the quarter of an hour 300 steps took on two
busy cores. What the snippets call and check is otherwise unchanged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md", "docs/segmenting.md", "docs/adaptation.md", "docs/tiling.md", "docs/network.md", "docs/robustness.md",
    "docs/uncertainty.md",
]
UNTESTED = {  # page: a marker of the snippet that keeps it out (and the test that covers it)
    "docs/weights.md": 'from_pretrained("org/repo"',  # a hub repo: tests/test_hub.py
    "docs/tvm.md": "up.compile(",  # a TVM build of minutes: tests/test_backends.py
    "docs/cluster.md": 'segment_dataset("scans/"',  # a Ray cluster over a dataset: tests/test_cluster.py
    "docs/annotate.md": "my_editor(",  # a person's mask editor in the loop: tests/test_annotate.py
    "docs/methods.md": 'method="auto", time_budget_s=300',  # minutes of training: tests/test_methods.py
    "docs/colour.md": 'colour="auto")',  # no RGB task here: tests/test_predictor_colour.py
}
ADAPT_STEPS = 3
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # as tests/conftest.py sets by default, but always
SUBPROCESS_TIMEOUT = 360  # below the test's own pytest-timeout, so a slow run fails with the snippet's output
PRELUDE = f'''\
# test-only budget cap (tests/test_readme.py): adaptation runs {ADAPT_STEPS} steps
import universeg_plus.predictor as _predictor

_adapt = _predictor.Predictor.adapt


def _capped_adapt(self, *args, **kwargs):
    if args:
        args = (min(args[0] or {ADAPT_STEPS}, {ADAPT_STEPS}), *args[1:])
    else:
        kwargs["steps"] = min(kwargs.get("steps") or {ADAPT_STEPS}, {ADAPT_STEPS})
    return _adapt(self, *args, **kwargs)


_predictor.Predictor.adapt = _capped_adapt
'''


def _blocks(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / page).read_text(encoding="utf-8"), re.S | re.M)


def test_every_page_with_python_is_run_or_named_as_tested_elsewhere():
    pages = {str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
    with_python = {p for p in pages if _blocks(p)}
    assert with_python - set(PAGES) - set(UNTESTED) == set(), "a page with Python snippets is not run here"
    for page, marker in UNTESTED.items():
        assert any(marker in b for b in _blocks(page)), f"{page}: review UNTESTED"
    assert len(_blocks("README.md")) >= 2


@pytest.mark.timeout(SUBPROCESS_TIMEOUT + 60)
@pytest.mark.parametrize("page", PAGES)
def test_python_snippets_run_in_a_fresh_process(page, tmp_path):
    blocks = _blocks(page)
    assert blocks, f"{page} has no python snippet"
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the snippets use repository-relative paths
    script = tmp_path / "snippets.py"
    script.write_text(PRELUDE + "\n\n" + "\n\n".join(blocks), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **ONE_THREAD}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, "\n".join(ln for ln in proc.stderr.splitlines() if "step/s" not in ln)[-3000:]
    random_lines = [ln for ln in proc.stderr.splitlines() if "randomly initialised" in ln]
    # the only random model a snippet builds for segmentation is the one asked for out loud
    assert all("pretrained=False" in ln for ln in random_lines), random_lines
    if page == "README.md":
        assert (tmp_path / "outputs" / "y136_mask.png").is_file()
        assert re.search(r"'dice': ", proc.stdout), proc.stdout
