from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    from universeg_plus.train import load_run_config, train

    cfg = load_run_config(
        CONFIGS / "tiny.yaml",
        [f"out_dir={out}/run", "train.steps=4", "train.device=cpu", "train.ckpt_every=100", "val.enabled=false"],
    )
    summary = train(cfg)
    Path(out, f"rank{rank}.json").write_text(json.dumps(summary))


def test_two_gloo_processes_stay_in_sync(tmp_path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    s0 = json.loads((tmp_path / "rank0.json").read_text())
    s1 = json.loads((tmp_path / "rank1.json").read_text())
    assert s0["step"] == s1["step"] == 4
    assert s0["param_digest"] == s1["param_digest"]
    # parameters moved from the common initialisation, and rank 0 wrote the synced weights
    from universeg_plus import create_model

    torch.manual_seed(0)
    init = create_model("universeg-tiny").state_dict()
    trained = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert any(not torch.equal(init[k], trained[k]) for k in init)
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert len(ck["rng"]["data"]) == 2 and not torch.equal(ck["rng"]["data"][0], ck["rng"]["data"][1])
