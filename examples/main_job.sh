#!/usr/bin/env bash
# The main job on a fresh machine: install universeg_plus (core only) into .venv, then segment the
# bundled example tasks from a few labelled slices with the shipped weights, printing Dice against the
# known masks and writing overlay PNGs to example_output/. Extra arguments go to `universeg-plus example`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# torch first and pinned: the CPU build where no GPU is present (see .ci/install_torch.sh), so pip
# never resolves a multi-GB CUDA build on a CPU machine.
bash .ci/install_torch.sh
python -m pip install -q -c .ci/constraints.txt -e .
universeg-plus example "$@"
# the commands above ran inside .venv; the user's shell is not in it yet
echo
echo "universeg-plus is installed in $VENV. In a new shell, activate it first:"
echo "  source $VENV/bin/activate"
