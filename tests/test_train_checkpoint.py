"""Checkpoints: a ``last.pt`` written by the earlier training code resumes exactly with this one."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from universeg_plus.train import load_run_config, train
from universeg_plus.train.checkpoint import (
    DataStreams,
    load_checkpoint,
    resolve_resume,
    truncate_logs,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "data" / "resume_v1"
# the settings tests/data/resume_v1/make_fixture.py trained with
OVERRIDES = ["train.steps=6", "train.log_every=1", "train.ckpt_every=100", "train.num_threads=1",
             "train.device=cpu", "train.progress=false"]


def test_checkpoint_of_the_earlier_code_resumes_exactly(tmp_path):
    # Written by commit ef4e06b (before train/loop.py was split): step 3 of configs/tiny.yaml, with
    # log.csv rows up to step 6, as if the run had logged past its checkpoint when it was stopped.
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "log.csv"):
        shutil.copyfile(FIXTURE / name, out / name)
    assert load_checkpoint(out / "last.pt")["step"] == 3
    threads = torch.get_num_threads()
    try:
        summary = train(load_run_config(ROOT / "configs" / "tiny.yaml", [f"out_dir={out}", *OVERRIDES,
                                                                        "train.resume=auto"]))
    finally:
        torch.set_num_threads(threads)
    assert summary["step"] == 6 and summary["stopped"] == "done"
    # the same parameters as the earlier code's own resume to step 6 (bit for bit on the machine that
    # wrote the fixture; the tolerance leaves room for other CPUs' float kernels)
    got, want = load_file(str(out / "model" / "model.safetensors")), load_file(
        str(FIXTURE / "expected_step6.safetensors"))
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    # the data streams continued where the checkpoint left them (draw counts do not depend on floats)
    ck = load_checkpoint(out / "last.pt")
    streams = torch.load(FIXTURE / "expected_step6_streams.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(ck["rng"]["data"], streams["data"]))
    assert all(torch.equal(a, b) for a, b in zip(ck["rng"]["host"], streams["host"]))
    assert ck["scheduler"]["last_epoch"] == 6 and ck["step"] == 6
    # log.csv was cut back to step 3, then continued: one row per step
    steps = [int(r["step"]) for r in csv.DictReader((out / "log.csv").open())]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resolve_resume(tmp_path):
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path) is None
    (tmp_path / "last.pt").write_bytes(b"")
    assert resolve_resume("auto", tmp_path) == tmp_path / "last.pt"
    assert resolve_resume("x/last.pt", tmp_path) == Path("x/last.pt")


def test_truncate_logs_keeps_rows_up_to_the_step(tmp_path):
    (tmp_path / "log.csv").write_text("step,loss\r\n1,0.5\r\n2,0.4\r\n3,0.3\r\n4,0.")  # partial last line
    (tmp_path / "val.csv").write_text("step,task,dice\n2,a,0.1\n2,b,0.2\n4,a,0.3\n")
    truncate_logs(tmp_path, 2)
    assert (tmp_path / "log.csv").read_text() == "step,loss\n1,0.5\n2,0.4\n"
    assert (tmp_path / "val.csv").read_text() == "step,task,dice\n2,a,0.1\n2,b,0.2\n"
    truncate_logs(tmp_path / "missing", 2)  # no logs yet: nothing to do


def test_data_streams_are_seeded_by_seed_rank_and_offset():
    def draw(s: DataStreams) -> tuple[float, float]:
        return float(torch.rand(1, generator=s.data)), float(torch.rand(1, generator=s.host))

    a, b = DataStreams(3, 0, torch.device("cpu")), DataStreams(3, 0, torch.device("cpu"))
    assert draw(a) == draw(b)
    assert draw(DataStreams(3, 1, torch.device("cpu"))) != draw(DataStreams(3, 0, torch.device("cpu")))
    a.reseed(5)
    b.reseed(5)
    assert draw(a) == draw(b)


def test_restore_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
