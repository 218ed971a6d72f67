"""TVM-compiled inference paths: parity of every level, symbolic S, cache, O3 database reuse, CLI.

Uses universeg-tiny at 32x32 with small S; each level is compiled once (module-scoped fixtures).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch

from universeg_plus import create_model
from universeg_plus.backends.parity import PARITY_TOLERANCE, check_parity, parity_inputs

tvm = pytest.importorskip("tvm", reason="apache-tvm is not installed (extra: universeg-plus[tvm])")

import universeg_plus  # noqa: E402
from universeg_plus.backends import cache as cache_mod  # noqa: E402
from universeg_plus.backends import compile as compile_model  # noqa: E402
from universeg_plus.backends.targets import resolve_target  # noqa: E402
from universeg_plus.cli import main as cli_main  # noqa: E402

SIZE = (32, 32)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tvm_cache")


@pytest.fixture(scope="module")
def compiled(model, cache_dir):
    """One symbolic-S module per level O0..O2, built once for the whole file."""
    built = {}

    def get(level: str):
        if level not in built:
            built[level] = compile_model(model, level=level, image_size=SIZE, cache_dir=cache_dir)
        return built[level]

    return get


@pytest.mark.parametrize("level", ["O0", "O1", "O2"])
def test_level_matches_eager_for_any_support_size(compiled, model, level):
    cm = compiled(level)
    assert cm.support_size is None and cm.level == level and cm.config == model.config
    report = check_parity(cm, model, support_sizes=(1, 3, 17))
    assert set(report.max_abs_diff) == {f"{k} S={s}" for k in ("random", "synthetic") for s in (1, 3, 17)}
    assert report.worst <= PARITY_TOLERANCE, report.max_abs_diff


def test_levels_use_the_documented_targets(compiled):
    assert "mcpu" not in json.loads(compiled("O1").target)
    host = json.loads(compiled("O2").target)
    assert host["mcpu"] == str(tvm.target.codegen.llvm_get_system_cpu())


def test_compiled_model_keeps_the_model_contract(compiled, model):
    cm = compiled("O2")
    t, si, sl = parity_inputs("synthetic", 1, 4, SIZE, seed=7)
    out = cm(t.double(), si.double(), sl.double())
    assert out.dtype == torch.float64 and out.shape == (1, 1, *SIZE)
    with torch.no_grad():
        torch.testing.assert_close(out.float(), model(t, si, sl), atol=PARITY_TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="compiled for images of size"):
        cm(*parity_inputs("random", 1, 2, (16, 16)))
    with pytest.raises(ValueError, match="batch size B=1"):
        cm(*parity_inputs("random", 2, 2, SIZE))
    with pytest.raises(ValueError, match="S >= 1"):
        cm(t, si[:, :0], sl[:, :0])
    with pytest.raises(TypeError, match="floating-point"):
        cm(t, si, sl.long())


def test_second_compile_is_a_cache_hit(compiled, model, cache_dir):
    first = compiled("O2")
    again = compile_model(model, level="O2", image_size=SIZE, cache_dir=cache_dir)
    assert not first.from_cache and again.from_cache and again.library_path == first.library_path
    x = parity_inputs("random", 1, 5, SIZE, seed=3)
    torch.testing.assert_close(again(*x), first(*x), atol=0, rtol=0)


def test_cache_key_covers_weights_and_shapes(model):
    other = create_model("universeg-tiny")
    other.load_state_dict(model.state_dict())
    assert cache_mod.weights_digest(other) == cache_mod.weights_digest(model)
    with torch.no_grad():
        other.out_conv.conv.bias += 1e-6
    assert cache_mod.weights_digest(other) != cache_mod.weights_digest(model)
    base = dict(weights="w", config={}, support_size=None, level="O2", target="t", tvm="0.27")
    keys = {cache_mod.cache_key(**base), cache_mod.cache_key(**{**base, "support_size": 3})}
    keys |= {cache_mod.cache_key(**{**base, "level": "O1"}), cache_mod.cache_key(**{**base, "tvm": "0.28"})}
    assert len(keys) == 4


def test_corrupt_cache_entry_is_rebuilt(compiled, model, tmp_path, caplog):
    built = compiled("O1")
    for src in (built.library_path, built.library_path.with_suffix(".json")):  # a copy of a good entry
        shutil.copy(src, tmp_path / src.name)
    kw = dict(level="O1", image_size=SIZE, cache_dir=tmp_path)
    first = compile_model(model, **kw)
    assert first.from_cache
    lib = first.library_path
    data = bytearray(lib.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    # a new file, as a disk or a crashed copy would leave it (writing into the library this
    # process has mapped would corrupt the running code, not the cache entry)
    bad = tmp_path / "corrupt.so"
    bad.write_bytes(bytes(data))
    os.replace(bad, lib)
    with caplog.at_level("WARNING"):
        rebuilt = compile_model(model, **kw)
    assert not rebuilt.from_cache and "corrupt" in caplog.text
    x = parity_inputs("synthetic", 1, 2, SIZE, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(*x), model(*x), atol=PARITY_TOLERANCE, rtol=0)
    # the rebuilt entry is whole again, so the next compile trusts it
    assert compile_model(model, **kw).from_cache
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_stale_or_partial_entries_are_discarded(tmp_path):
    key = "k" * 32
    (tmp_path / f"{key}.so").write_bytes(b"not a library")
    assert cache_mod.load_entry(tmp_path, key) is None  # library without metadata
    assert not (tmp_path / f"{key}.so").exists()
    (tmp_path / f"{key}.so").write_bytes(b"x")
    (tmp_path / f"{key}.json").write_text("{truncated")
    assert cache_mod.load_entry(tmp_path, key) is None
    assert not (tmp_path / f"{key}.json").exists() and not (tmp_path / f"{key}.so").exists()


def _record_for_first_conv(mod, target, tuning_dir):
    """Write a hand-made MetaSchedule record (outer loop parallel) for one fused conv kernel."""
    from tvm.s_tir import meta_schedule as ms

    from universeg_plus.backends.tuning import extract_kernels, open_database

    kernel = next(k for k in extract_kernels(mod, target) if k.static and "conv2d" in k.name)
    func = kernel.task.dispatched[0]
    sch = tvm.s_tir.Schedule(func)
    block = sch.get_sblock(next(n for n in ("conv2d_nchw",) if n))
    outer = sch.get_loops(block)[0]
    sch.parallel(outer)
    db = open_database(tuning_dir, create=True)
    workload = db.commit_workload(func)
    db.commit_tuning_record(
        ms.database.TuningRecord(
            sch.trace, workload, [1e-3], target, ms.arg_info.ArgInfo.from_prim_func(func["main"])
        )
    )
    return kernel.name


def test_o3_applies_the_tuning_database(model, tmp_path):
    from universeg_plus.backends.export import export_relax
    from universeg_plus.backends.levels import fuse_passes
    from universeg_plus.backends.tuning import open_database

    target = resolve_target(None)
    tuning_dir = tmp_path / "tuning"
    with pytest.raises(RuntimeError, match="universeg-plus tune"):
        compile_model(model, level="O3", support_size=2, image_size=SIZE, cache_dir=tmp_path, tuning_dir=tuning_dir)
    mod = export_relax(model, 1, 2, SIZE)
    name = _record_for_first_conv(mod, target, tuning_dir)

    # the record is found and marks exactly that kernel as scheduled
    db = open_database(tuning_dir)
    with target, db:
        fused = tvm.transform.Sequential(fuse_passes(target))(mod)
        applied = tvm.relax.transform.MetaScheduleApplyDatabase()(fused)
    scheduled = [gv.name_hint for gv, f in applied.functions.items() if f.attrs and f.attrs.get("tirx.is_scheduled")]
    assert scheduled == [name]

    cm = compile_model(model, level="O3", support_size=2, image_size=SIZE, cache_dir=tmp_path, tuning_dir=tuning_dir)
    assert cm.level == "O3" and cm.support_size == 2 and not cm.from_cache
    report = check_parity(cm, model)
    assert set(report.max_abs_diff) == {"random S=2", "synthetic S=2"} and report.ok, report.max_abs_diff
    with pytest.raises(ValueError, match="support size S=2"):
        cm(*parity_inputs("random", 1, 3, SIZE))
    assert compile_model(model, level="O3", support_size=2, image_size=SIZE, cache_dir=tmp_path, tuning_dir=tuning_dir).from_cache


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="level must be one of"):
        compile_model(model, level="O4")
    with pytest.raises(ValueError, match="backend must be"):
        compile_model(model, backend="onnx")
    with pytest.raises(ValueError, match=f"divisible by {model.config.size_multiple}"):
        compile_model(model, image_size=(SIZE[0] + 2, SIZE[1]))
    with pytest.raises(ValueError, match="support_size"):
        compile_model(model, support_size=0)
    with pytest.raises(TypeError, match="UniverSegPlus"):
        compile_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="flag-string form"):
        resolve_target("llvm -mcpu=native")
    from universeg_plus.backends import tune

    with pytest.raises(ValueError, match="static support_size"):
        tune(model, support_size=None, image_size=SIZE)


def test_missing_tvm_names_the_extra(model, monkeypatch):
    monkeypatch.setitem(sys.modules, "tvm", None)
    with pytest.raises(ImportError, match=r"universeg-plus\[tvm\]"):
        compile_model(model, image_size=SIZE)


def test_top_level_api_and_predictor(model, cache_dir, compiled):
    compiled("O2")  # populated cache: the Predictor's compile is a load
    assert universeg_plus.compile is compile_model
    from universeg_plus import Predictor, SupportSet

    t, si, sl = parity_inputs("synthetic", 1, 3, SIZE, seed=2)
    support = SupportSet.from_arrays(si[0, :, 0].numpy(), sl[0, :, 0].numpy(), size=SIZE)
    eager = Predictor(model).set_support(support).predict(t[0, 0].numpy())
    fast = Predictor(model, backend="tvm", cache_dir=cache_dir).set_support(support).predict(t[0, 0].numpy())
    assert fast.mask.shape == eager.mask.shape
    torch.testing.assert_close(torch.from_numpy(fast.probabilities), torch.from_numpy(eager.probabilities), atol=1e-5, rtol=0)


def test_cli_compile_check(model, cache_dir, compiled, capsys):
    compiled("O2")
    rc = cli_main(["compile", "universeg-tiny", "--level", "O2", "--cache-dir", str(cache_dir), "--check", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["parity"]["ok"] and out["support_size"] is None
    assert out["parity"]["max_abs_diff"]["synthetic S=17"] <= PARITY_TOLERANCE
    assert cli_main(["compile", "universeg-tiny", "--support-size", "zero"]) == 2
    assert cli_main(["tune", "universeg-tiny", "--support-size", "0"]) == 2
    assert cli_main(["compile", "universeg-tiny", "--target", "llvm -mcpu=native"]) == 2
