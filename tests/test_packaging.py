"""The wheel: what `python -m build` / `pip wheel` produce holds the package and nothing else, and works alone.

CI (`.ci/run`) builds the wheel with `python -m build` and passes it in ``UNIVERSEG_PLUS_WHEEL``;
without it the test builds one from a copy of the checkout with `pip wheel` (no build isolation,
so no download), leaving the checkout untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL_ENV = "UNIVERSEG_PLUS_WHEEL"
# never part of a build: caches, virtual environments, run outputs, earlier builds
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "example_output"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get(WHEEL_ENV)
    if given:
        path = Path(given)
        if not path.is_file():
            raise FileNotFoundError(f"{WHEEL_ENV}={given} is not a file")
        return path
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_SKIP)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
           "-w", str(tmp / "dist"), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = (tmp / "dist").glob("universeg_plus-*.whl")
    return built


def test_wheel_holds_every_module_and_no_data(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta).decode()
        entry_points = zf.read(meta.replace("METADATA", "entry_points.txt")).decode()
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "universeg_plus").rglob("*.py")}
    packaged = {n for n in names if n.endswith(".py")}
    assert source - packaged == set(), "modules missing from the wheel"
    assert packaged - source == set(), "modules in the wheel that the checkout does not have"
    outside = [n for n in names if not n.startswith(("universeg_plus/", "universeg_plus-"))]
    assert outside == [], f"the wheel must hold only the package: {outside[:5]}"
    data = [n for n in names if n.endswith((".safetensors", ".pt", ".png", ".nii.gz", ".npz", ".yaml"))]
    assert data == [], f"weights, images or configs leaked into the wheel: {data[:5]}"
    assert "universeg_plus/data/public/manifest.json" in names, "build-tasks needs its manifest at runtime"
    assert "universeg_plus/data/splits.json" in names, "training and evaluate need the train/validation/held-out split"
    assert "universeg-plus = universeg_plus.cli:main" in entry_points
    version = (ROOT / "universeg_plus" / "_version.py").read_text().split('"')[1]
    for line in ("Name: universeg-plus", f"Version: {version}", "Requires-Dist: torch", "Provides-Extra: demo", "Provides-Extra: tvm",
                 "Provides-Extra: dev"):
        assert line in metadata, line


def test_installed_wheel_imports_alone_and_finds_weights_by_env(wheel, tmp_path):
    """Unpacked like pip installs it, away from the checkout: imports and the CLI work; the shipped
    weights are found through UNIVERSEG_PLUS_WEIGHTS_DIR (the wheel does not carry them)."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "UNIVERSEG_PLUS_WEIGHTS_DIR")}
    env.update(PYTHONPATH=str(site), UNIVERSEG_PLUS_WEIGHTS_DIR=str(ROOT / "weights"))
    code = (
        "import universeg_plus as up; print(up.__file__); "
        "m = up.create_model('universeg-small', pretrained=True); print(type(m).__name__); "
        "from universeg_plus.data.public import load_manifest; print(len(load_manifest())); "
        "from universeg_plus.data.splits import load_splits; print(len(load_splits().held_out))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second, third, fourth = proc.stdout.split()[:4]
    assert Path(first).is_relative_to(site), f"imported {first}, not the unpacked wheel"
    assert second == "UniverSegPlus" and third == "25" and fourth == "6"
    cli = subprocess.run([sys.executable, "-m", "universeg_plus", "--help"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert cli.returncode == 0 and "example" in cli.stdout and "segment" in cli.stdout
