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
# (the package face imports universeg_plus.factory for create_model, so a run cannot tell it apart;
# the static checks below cover it)
ABOVE_NETWORK = [
    "universeg_plus.backends", "universeg_plus.train", "universeg_plus.demo",
    "universeg_plus.predictor", "universeg_plus.inference", "universeg_plus.cli",
]
HEAVY = ["tvm", "gradio", "huggingface_hub", "medmnist", "ray"]


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


def test_network_layer_imports_only_itself_the_hub_mixin_and_torch_einops_pydantic():
    """model.py gets from_pretrained/save_pretrained/push_to_hub by inheriting the hub's mixin (the hub
    is handed the class, huggingface_hub style); nothing else of the package above the network."""
    own = ("universeg_plus.model", "universeg_plus.config", "universeg_plus.registry", "universeg_plus.nn")
    third_party = ("torch", "einops", "pydantic")
    bad = []
    for path in _network_files():
        rel = str(path.relative_to(ROOT))
        for mod, _, _ in _imports(path):
            if mod.split(".")[0] in sys.stdlib_module_names or _under(mod, list(third_party)):
                continue
            if _under(mod, list(own)) or (rel == "universeg_plus/model.py" and mod == "universeg_plus.hub.mixin"):
                continue
            bad.append(f"{rel}: {mod}")
    assert bad == [], "the network layer imports from above it: " + "; ".join(bad)


def test_hub_depends_on_config_registry_and_io_only():
    """hub/ never imports the network class (it takes it as ``model_cls``), the factory or anything above."""
    allowed = ["universeg_plus.hub", "universeg_plus.config", "universeg_plus.registry", "universeg_plus.io",
               "universeg_plus._version"]
    bad = [
        f"{f.relative_to(ROOT)}: {mod}"
        for f in sorted((PACKAGE / "hub").glob("*.py"))
        for mod, _, _ in _imports(f)
        if mod.split(".")[0] == "universeg_plus" and not _under(mod, allowed)
    ]
    assert bad == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> package modules it imports anywhere in its source (function-level imports included).

    ``from pkg import name`` ties to ``pkg.name`` when that is a module, else to ``pkg``. A package's
    ``__init__`` importing its own submodules, and a module importing a package it sits in, assemble
    the package rather than tie two modules, so they are not edges.
    """
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for target, _, _ in _imports(path):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if not target or target == mod or mod.startswith(target + ".") or target.startswith(mod + "."):
                continue
            graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_lazy_cycle():
    """The check below can fail: a two-module loop and a three-module loop are both reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_lazy_imports_included():
    """No whitelist: every import statement counts, at module level or inside a function."""
    graph = _import_graph()
    assert graph["universeg_plus.model"] >= {"universeg_plus.hub.mixin"}  # the parse sees real edges
    assert "universeg_plus.robustness.report" in graph["universeg_plus.robustness.runner"]
    cycles = _cycles(graph)
    assert cycles == [], "import cycles (lazy imports included): " + " | ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "path, forbidden",
    [
        ("hub", ["universeg_plus.factory", "universeg_plus.model", "universeg_plus.cli", "universeg_plus.demo",
                 "universeg_plus.backends"]),
        ("adapt.py", ["universeg_plus.train"]),
        ("evaluation", ["universeg_plus.train"]),
        ("backends", ["universeg_plus.factory", "universeg_plus.cli", "universeg_plus.demo", "universeg_plus.hub"]),
        ("robustness/runner.py", ["universeg_plus.cli", "universeg_plus.demo"]),
        ("io/nifti.py", ["universeg_plus.io.images"]),
        ("predictor.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.compile"]),
        ("adapt.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.evaluation"]),
        ("inferers.py", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.evaluation"]),
        ("annotate", ["universeg_plus.cli", "universeg_plus.demo", "universeg_plus.evaluation"]),
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
