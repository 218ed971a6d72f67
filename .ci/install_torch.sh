#!/usr/bin/env bash
# Install torch==2.13.0 into the active Python environment: the CPU build where no NVIDIA GPU is
# present, so pip never pulls the multi-GB CUDA build (about 20 nvidia-* packages) onto a CPU machine.
#
#   bash .ci/install_torch.sh            # TORCH_BUILD=auto (default): cuda if `nvidia-smi -L` lists a GPU
#   TORCH_BUILD=cpu bash .ci/install_torch.sh
#   TORCH_BUILD=cuda bash .ci/install_torch.sh
#
# CPU on Linux, in this order:
#   1. a local torch 2.13.0+cpu wheel that pip's own configuration offers (find-links in pip.conf or
#      PIP_FIND_LINKS), installed without asking any index; its small dependencies then come from the index;
#   2. otherwise the PyTorch CPU wheel index ($TORCH_CPU_INDEX, default https://download.pytorch.org/whl/cpu).
# On macOS and Windows the wheel on PyPI already is the CPU build. Prints the torch it installed.
set -euo pipefail

TORCH_VERSION=${TORCH_VERSION:-2.13.0}
CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
build=${TORCH_BUILD:-auto}
pip_install() { python -m pip install -q "$@"; }

if [ "$build" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    build=cuda
  else
    build=cpu
  fi
fi

case "$build" in
  cuda)
    pip_install "torch==$TORCH_VERSION"  # PyPI's Linux wheel is the CUDA build
    ;;
  cpu)
    if [ "$(uname -s)" != Linux ]; then
      pip_install "torch==$TORCH_VERSION"
    elif pip_install --no-index --no-deps "torch==$TORCH_VERSION+cpu" 2>/dev/null; then
      echo "torch: local CPU wheel (pip find-links)" >&2
      pip_install "torch==$TORCH_VERSION+cpu"  # already installed: fetches only its dependencies
    else
      echo "torch: CPU build from $CPU_INDEX" >&2
      pip_install --index-url "$CPU_INDEX" --extra-index-url https://pypi.org/simple "torch==$TORCH_VERSION+cpu"
    fi
    ;;
  *)
    echo "TORCH_BUILD must be auto, cpu or cuda, got '$build'" >&2
    exit 2
    ;;
esac

python -W ignore - "$build" <<'EOF'
import sys

import torch

want = sys.argv[1]
print(f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'})", file=sys.stderr)
if want == "cpu" and torch.version.cuda is not None:
    sys.exit(f"expected the CPU build of torch, got {torch.__version__} built for CUDA {torch.version.cuda}")
EOF
