"""Write the resume fixture with the training code on PYTHONPATH (run it with the *old* code).

    git archive <commit> | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/data/resume_v1/make_fixture.py tests/data/resume_v1

Trains configs/tiny.yaml (synthetic tasks only, 1 CPU thread) to step 3 with a checkpoint, keeps that
``last.pt``, resumes to step 6 and keeps what an exact resume must reproduce: the parameters and the
data-stream states at step 6, and ``log.csv`` up to step 6 (as if the run had logged past its
checkpoint before it was stopped).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch

from universeg_plus.train import load_run_config, train
from universeg_plus.train.checkpoint import load_checkpoint

OVERRIDES = ["train.steps=6", "train.log_every=1", "train.ckpt_every=100", "train.num_threads=1",
             "train.device=cpu", "train.progress=false"]


def main(dest: Path) -> None:
    config = Path(__file__).resolve().parents[3] / "configs" / "tiny.yaml"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        train(load_run_config(config, [f"out_dir={out}", *OVERRIDES, "train.stop_at=3"]))
        shutil.copyfile(out / "last.pt", dest / "last.pt")
        train(load_run_config(config, [f"out_dir={out}", *OVERRIDES, "train.resume=auto"]))
        shutil.copyfile(out / "log.csv", dest / "log.csv")
        shutil.copyfile(out / "model" / "model.safetensors", dest / "expected_step6.safetensors")
        rng = load_checkpoint(out / "last.pt")["rng"]
        torch.save({"data": rng["data"], "host": rng["host"]}, dest / "expected_step6_streams.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
