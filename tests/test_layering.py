"""Layers import only downwards: the network layer needs nothing above it, and the package imports light.

Run in fresh interpreters (``sys.executable -c``), so that what this test process has already
imported cannot hide an import; plus a static read of every import statement (lazy ones inside
functions included), which a run can miss when the function is never called.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "universeg_plus"

NETWORK = ["universeg_plus.model", "universeg_plus.nn", "universeg_plus.config", "universeg_plus.registry"]
ABOVE_NETWORK = ["universeg_plus.hub", "universeg_plus.backends", "universeg_plus.train", "universeg_plus.demo"]
HEAVY = ["tvm", "gradio", "huggingface_hub", "medmnist", "ray"]

# Imports inside functions of the network layer that reach upwards on purpose, each run only on call:
# the documented UniverSegPlus.from_pretrained / save_pretrained / push_to_hub aliases, and the old
# import path of create_model (deprecated). Anything else is a layering error.
ALLOWED_LAZY_UPWARD = {
    ("universeg_plus/model.py", "universeg_plus.hub.pretrained"),
    ("universeg_plus/model.py", "universeg_plus.hub.folder"),
    ("universeg_plus/model.py", "universeg_plus.hub.download"),
    ("universeg_plus/registry.py", "universeg_plus.factory"),
}


def _loaded_after(statement: str) -> list[str]:
    """Module names in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    return json.loads(out.splitlines()[-1])


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", NETWORK)
def test_network_layer_loads_nothing_above_it(module):
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    above = [m for m in loaded if _under(m, ABOVE_NETWORK + HEAVY)]
    assert above == [], f"importing {module} loaded {above}"


def test_import_universeg_plus_loads_no_optional_package():
    loaded = _loaded_after("import universeg_plus")
    heavy = [m for m in loaded if _under(m, HEAVY)]
    assert heavy == [], f"`import universeg_plus` loaded {heavy}; they must be imported lazily"


def _imports(path: Path) -> list[tuple[str, bool, str]]:
    """``(absolute module, at module level, imported name)`` for every import in ``path``.

    ``from X import y`` gives module ``X.y`` when ``y`` is a submodule of X, else ``X``.
    """
    package = list(path.relative_to(ROOT).parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = ROOT.joinpath(*mod.split("."), alias.name)
                is_sub = sub.is_dir() or sub.with_suffix(".py").is_file()
                out.append((f"{mod}.{alias.name}" if is_sub else mod, id(node) in top, alias.name))
    return out


def _network_files() -> list[Path]:
    return [PACKAGE / "model.py", PACKAGE / "config.py", PACKAGE / "registry.py", *sorted((PACKAGE / "nn").glob("*.py"))]


def test_network_layer_imports_only_itself_and_torch_einops_pydantic():
    own = ("universeg_plus.model", "universeg_plus.config", "universeg_plus.registry", "universeg_plus.nn")
    third_party = ("torch", "einops", "pydantic")
    bad = []
    for path in _network_files():
        rel = str(path.relative_to(ROOT))
        for mod, _, _ in _imports(path):
            if mod.split(".")[0] in sys.stdlib_module_names or _under(mod, list(third_party)):
                continue
            if _under(mod, list(own)) or (rel, mod) in ALLOWED_LAZY_UPWARD:
                continue
            bad.append(f"{rel}: {mod}")
    assert bad == [], "the network layer imports from above it: " + "; ".join(bad)


def test_lazy_upward_exceptions_are_inside_functions():
    at_top = [
        (str(p.relative_to(ROOT)), mod)
        for p in _network_files()
        for mod, top, _ in _imports(p)
        if top and (str(p.relative_to(ROOT)), mod) in ALLOWED_LAZY_UPWARD
    ]
    assert at_top == []


@pytest.mark.parametrize(
    "path, forbidden",
    [
        ("hub", ["universeg_plus.factory", "universeg_plus.cli", "universeg_plus.demo", "universeg_plus.backends"]),
        ("backends", ["universeg_plus.factory", "universeg_plus.cli", "universeg_plus.demo", "universeg_plus.hub"]),
        ("robustness/runner.py", ["universeg_plus.cli", "universeg_plus.demo"]),
        ("io/nifti.py", ["universeg_plus.io.images"]),
        ("predictor.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.compile"]),
        ("adapt.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.evaluation"]),
        ("tiling.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.evaluation"]),
    ],
)
def test_capabilities_do_not_reach_up_or_through_the_package_face(path, forbidden):
    """hub/ sits below the factory; nothing goes through ``universeg_plus`` itself to reach a sibling
    (``import universeg_plus; universeg_plus.compile``): import the module that defines it."""
    target = PACKAGE / path
    files = sorted(target.glob("*.py")) if target.is_dir() else [target]
    bad = []
    for f in files:
        for mod, _, name in _imports(f):
            if _under(mod, forbidden) or (mod == "universeg_plus" and name != "__version__"):
                bad.append(f"{f.relative_to(ROOT)}: {mod}")
    assert bad == []
