"""What first use of ``universeg-v1`` costs beyond the download, and what every later load costs.

    python benchmarks/bench_official_fetch.py --runs 5 --threads 1

A checkpoint in the official layout (the ``universeg-v1`` architecture, 44 tensors, 1,182,785
parameters, random weights; the real file's bytes cannot be fetched here) is served from 127.0.0.1,
and the table's pin is pointed at it, as in ``tests/test_hub_official.py``. Each run, in a fresh
interpreter with an empty cache: (1) first use: ``create_model("universeg-v1", pretrained=True)``
(download from the local server, git blob id and size check, tensor-only read, strict load,
safetensors + config written, then loaded); (2) later use: the same call again, offline
(``HF_HUB_OFFLINE=1``). Interleaved; medians of the in-process wall time of the call (the
interpreter's start and ``import universeg_plus`` are not counted). A real first use adds the
transfer of about 4.7 MB from GitHub.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from hub_server import ReleaseServer  # noqa: E402

PATH = "/weights/universeg_v1_nf64_ss64_STA.pt"
CALL = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from universeg_plus.registry import PRETRAINED
PRETRAINED["universeg-v1"] = PRETRAINED["universeg-v1"].model_copy(update={"git_blob_id": sys.argv[1], "url": sys.argv[2]})
from universeg_plus import create_model
t = time.perf_counter()
create_model("universeg-v1", pretrained=True)
print(time.perf_counter() - t)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    from universeg_plus import create_model

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "v1.pt"
        torch.save(create_model("universeg-v1").state_dict(), ckpt)
        data = ckpt.read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        first, later = [], []
        with ReleaseServer({PATH: data}) as server:
            for run in range(args.runs):
                cache = Path(tmp) / f"cache{run}"
                base = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
                base.update(PYTHONPATH=str(ROOT), UNIVERSEG_PLUS_CACHE=str(cache), OMP_NUM_THREADS=str(args.threads))
                for offline, into in ((False, first), (True, later)):
                    env = {**base, "HF_HUB_OFFLINE": "1"} if offline else base
                    out = subprocess.run(
                        [sys.executable, "-c", CALL, blob, server.url(PATH), str(args.threads)],
                        env=env, capture_output=True, text=True, check=True,
                    ).stdout
                    into.append(float(out.split()[-1]))
    result = {
        "command": "python benchmarks/bench_official_fetch.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), torch {torch.__version__}",
        "checkpoint_bytes": len(data),
        "first_use_s_median": statistics.median(first),
        "later_use_s_median": statistics.median(later),
        "first_use_s": first,
        "later_use_s": later,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
