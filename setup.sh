#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with SPIRAL and everything
# its tests need. Installs PyTorch first: the CUDA build where an NVIDIA GPU is
# visible, otherwise the CPU build pinned below (an unpinned torch is a multi-GB
# CUDA build). Packages come from wherever pip is configured to take them
# (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS or pip.conf): a CPU-only
# machine that wants the small build points pip at PyTorch's CPU wheel index
# first (README, "Set-up"). Re-running is safe.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
START=$SECONDS
step() { echo "[setup $(( SECONDS - START ))s] $*"; }  # what runs now, and how long it usually takes
step "virtual environment .venv, pip, wheel, setuptools (usually under 30 s)"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || "$PY" -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip wheel setuptools >/dev/null
step "PyTorch (the CPU build: about 1 minute; the CUDA build: several minutes, a few GB)"
TORCH_VERSION=${SPIRAL_TORCH_VERSION:-2.13.0}
if python -c "import torch" 2>/dev/null; then
  echo "torch already installed: $(python -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "NVIDIA GPU found: installing the CUDA build of torch"
  python -m pip install -q torch
else
  echo "no CUDA: installing torch ${TORCH_VERSION} (the CPU build where pip is configured to find one)"
  python -m pip install -q "torch==${TORCH_VERSION}"
fi
step "SPIRAL and its dependencies: LangGraph, diffusers, transformers, test tools (about 3 minutes, ~1.5 GB)"
python -m pip install -q -e ".[diffusers,postgres,dev]"
step "done"
if [ "${VIRTUAL_ENV:-}" = "$PWD/.venv" ]; then
  echo "SPIRAL installed. Activate with: . .venv/bin/activate   then try: spiral demo"
else  # an environment that was active before set-up: that is where SPIRAL went, not .venv
  echo "SPIRAL installed into the active environment $VIRTUAL_ENV (not .venv); try: spiral demo"
fi
