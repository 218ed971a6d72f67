"""CLI messages name the command's flags, not the library's argument names (issue 24)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from universeg_plus.cli import build_parser
from universeg_plus.cli._flags import cli_message, flag_names


@pytest.fixture(scope="module")
def segment_flags():
    return flag_names(build_parser()._subparsers._group_actions[0].choices["segment"])


@pytest.mark.parametrize(
    "api, cli",
    [
        ("a mask has 40 labels (pass max_labels= to allow more)",
         "a mask has 40 labels (pass --max-labels to allow more)"),
        ("support_size must be an integer in 1..4 (the support set size), got 8",
         "--support-size must be an integer in 1..4 (the support set size), got 8"),
        ("To use it anyway, pass pretrained=False (CLI: --random-weights)", "To use it anyway, pass --random-weights"),
        ("ensemble must be a positive integer, got 0", "--ensemble must be a positive integer, got 0"),
        ("max_labels=64 allows more", "--max-labels 64 allows more"),
        ("the threshold of 0.5 and the ensemble members", "the threshold of 0.5 and the ensemble members"),
    ],
)
def test_api_names_become_flags(segment_flags, api, cli):
    assert cli_message(api, segment_flags) == cli


def test_every_segment_message_names_flags_in_a_real_process(tmp_path):
    """A mask that looks like an image, an oversized --support-size, a model without weights: no API names."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(tmp_path / "images" / f"a{i}.png")
        Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(tmp_path / "masks" / f"a{i}.png")
    target = tmp_path / "images" / "a0.png"
    code = (
        "import sys\nfrom universeg_plus.cli import main\n"
        "for argv in sys.argv[1:]:\n"
        "    print('exit', main(argv.split('|')), file=sys.stderr, flush=True)\n"
    )
    base = f"segment|--support|{tmp_path}|--target|{target}|--out|{tmp_path / 'o'}"
    runs = [f"{base}|--model|universeg-tiny|--random-weights",  # image as mask
            f"{base}|--model|universeg-tiny|--random-weights|--max-labels|255|--support-size|5",  # too many
            f"{base}|--model|universeg-v1-gelu"]  # no weights
    proc = subprocess.run([sys.executable, "-c", code, *runs], capture_output=True, text=True, timeout=300)
    err = proc.stderr
    assert err.count("exit 2") == 3, err[-3000:]
    assert "pass --max-labels to allow more" in err
    assert re.search(r"--support-size must be an integer in 1\.\.2", err)
    assert "pass --random-weights" in err
    for api in ("max_labels", "support_size", "pretrained=", "(CLI:"):
        assert api not in err, f"{api!r} in a CLI message:\n{err}"
