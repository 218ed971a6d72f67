"""Level O3's tuning database: O2's schedule is a measured candidate, O3 applies the faster one.

universeg-tiny at 32x32, S=2. The selection test uses hand-made run times; the others share one
real ``universeg-plus tune`` of the most expensive kernel with two trials (about a minute here,
mostly MetaSchedule's fixed cost: its imports and one round of evolutionary search).
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import torch

from universeg_plus import create_model
from universeg_plus.backends.parity import check_parity

tvm = pytest.importorskip("tvm", reason="apache-tvm is not installed (extra: universeg-plus[tvm])")

import tvm_ffi  # noqa: E402
from tvm.s_tir import meta_schedule as ms  # noqa: E402

from universeg_plus.backends import compile as compile_model  # noqa: E402
from universeg_plus.backends.export import export_relax  # noqa: E402
from universeg_plus.backends.levels import default_schedule, fuse_passes  # noqa: E402
from universeg_plus.backends.targets import resolve_target  # noqa: E402
from universeg_plus.backends.tuning import (  # noqa: E402
    extract_kernels,
    kernel_choice,
    measure_default_schedules,
    open_database,
)
from universeg_plus.cli import main as cli_main  # noqa: E402

SIZE = (32, 32)
S = 2


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("universeg-tiny").eval()


@pytest.fixture(scope="module")
def target():
    return resolve_target(None)


@pytest.fixture(scope="module")
def kernels(model, target) -> dict:
    """The tiny network's static fused kernels at S=2, by name."""
    return {k.name: k for k in extract_kernels(export_relax(model, 1, S, SIZE), target) if k.static}


def _mean(record) -> float:
    return sum(float(x) for x in record.run_secs) / len(record.run_secs)


def _same_body(a, b) -> bool:
    return tvm_ffi.structural_equal(a.body, b.body, map_free_vars=True)


def _applied(mod, target, db, name: str):
    """The kernel ``name`` as level O3 schedules it from ``db`` (fusion + MetaScheduleApplyDatabase)."""
    with target, db:
        fused = tvm.transform.Sequential(fuse_passes(target))(mod)
        applied = tvm.relax.transform.MetaScheduleApplyDatabase()(fused)
    func = next(f for gv, f in applied.functions_items() if gv.name_hint == name)
    assert func.attrs.get("tirx.is_scheduled"), name
    return func


def test_o3_applies_the_faster_of_tuned_and_o2(model, kernels, target, tmp_path):
    kernel = next(k for k in kernels.values() if "conv2d" in k.name)
    mod = kernel.task.dispatched[0]
    rule = default_schedule(mod["main"], target)
    other = tvm.s_tir.Schedule(mod)  # a stand-in for a tuned schedule: outer loop parallel only
    other.parallel(other.get_loops(other.get_sblock("conv2d_nchw"))[0])
    assert not _same_body(other.mod["main"], rule.mod["main"])
    db = open_database(tmp_path, create=True)
    workload = db.commit_workload(mod)
    args = ms.arg_info.ArgInfo.from_prim_func(mod["main"])

    def commit(sch, seconds: float) -> None:
        db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, [seconds], target, args))

    relax_mod = export_relax(model, 1, S, SIZE)
    commit(rule, 2e-3)
    commit(other, 1e-3)
    assert kernel_choice(db, kernel, target).applied == "tuned"
    assert _same_body(_applied(relax_mod, target, db, kernel.name), other.mod["main"])
    commit(rule, 0.5e-3)  # O2's schedule measured faster
    choice = kernel_choice(db, kernel, target)
    assert (choice.applied, choice.rule_seconds, choice.tuned_seconds) == ("rule", 0.5e-3, 1e-3)
    assert _same_body(_applied(relax_mod, target, db, kernel.name), rule.mod["main"])


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> tuple:
    """``universeg-plus tune`` of the most expensive kernel, 2 trials: (database folder, stdout)."""
    tuning_dir = tmp_path_factory.mktemp("tuning")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli_main([
            "tune", "universeg-tiny", "--support-size", str(S), "--image-size", *map(str, SIZE),
            "--trials", "2", "--trials-per-round", "2", "--max-kernels", "1", "--tuning-dir", str(tuning_dir),
        ])
    assert rc == 0, out.getvalue()
    return tuning_dir, out.getvalue()


@pytest.mark.slow
def test_tune_measures_o2_schedule_as_a_candidate(tuned, model, kernels, target):
    tuning_dir, stdout = tuned
    # the CLI names the kernel it tuned and what O3 applies to it
    lines = re.findall(r"^  (\S+): best tuned ([\d.]+) ms, O2 ([\d.]+) ms -> O3 applies (rule|tuned)$", stdout, re.M)
    assert len(lines) == 1, stdout
    name, tuned_ms, rule_ms, applied = lines[0]
    assert name == max(kernels.values(), key=lambda k: k.flops).name
    kernel = kernels[name]
    mod = kernel.task.dispatched[0]
    rule = default_schedule(mod["main"], target)
    assert rule is not None and "conv2d" in name

    db = open_database(tuning_dir)  # from disk: standard JSONDatabase records
    records = db.get_top_k(db.commit_workload(mod), len(db))

    def replayed(record):
        sch = tvm.s_tir.Schedule(mod)
        record.trace.apply_to_schedule(sch, remove_postproc=False)
        return sch.mod["main"]

    # O2's schedule is among the candidates (a record whose trace replays to the IR O2 compiles),
    # next to at least one tuned candidate
    is_rule = [_same_body(replayed(r), rule.mod["main"]) for r in records]
    assert any(is_rule) and not all(is_rule)
    rule_s = min(_mean(r) for r, yes in zip(records, is_rule) if yes)
    tuned_s = min(_mean(r) for r, yes in zip(records, is_rule) if not yes)
    choice = kernel_choice(db, kernel, target)
    assert (choice.rule_seconds, choice.tuned_seconds) == (rule_s, tuned_s)
    assert choice.applied == applied == ("rule" if rule_s <= tuned_s else "tuned")
    assert (float(rule_ms), float(tuned_ms)) == pytest.approx((1e3 * rule_s, 1e3 * tuned_s), abs=1e-3)

    # O3 schedules the kernel with the faster of the two: never slower than O2's, as measured
    best = records[0]  # the fastest record, the one MetaScheduleApplyDatabase replays
    assert _mean(best) == min(rule_s, tuned_s) <= rule_s
    o3 = _applied(export_relax(model, 1, S, SIZE), target, db, name)
    assert _same_body(o3, replayed(best))
    assert _same_body(o3, rule.mod["main"]) == (applied == "rule")
    # a second tune does not measure O2's schedule again (nothing to build: no builder needed)
    assert measure_default_schedules([kernel], db, target, builder=None, runner=None) == 0


@pytest.mark.slow
def test_o3_from_the_tuned_database_matches_eager(tuned, model, tmp_path):
    tuning_dir, _ = tuned
    cm = compile_model(model, level="O3", support_size=S, image_size=SIZE, cache_dir=tmp_path, tuning_dir=tuning_dir)
    assert cm.level == "O3" and cm.support_size == S
    report = check_parity(cm, model)
    assert report.ok and report.worst <= 1e-4, report.max_abs_diff
