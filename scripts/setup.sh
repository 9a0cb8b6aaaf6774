#!/usr/bin/env bash
# Installs what convnets needs on a fresh Debian machine: system packages and a project venv holding PyPI's
# torch==2.11.0, whose LibTorch the build links. Idempotent and non-interactive; each step is skipped when
# already satisfied.
#
#   bash scripts/setup.sh          what the app needs: build tools, the Debian libraries, Fashion-MNIST, torch,
#                                  oneDNN (the CPU inference plan)
#   bash scripts/setup.sh --test   also what the test suite needs: GoogleTest, Google Benchmark, clang (the
#                                  fuzzers), the photo fixtures, and the Python references (torchvision,
#                                  timm, TensorFlow, PIL, safetensors, NumPy, ONNX Runtime, OpenVINO)
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=0
[ "${1:-}" = "--test" ] && TEST=1

APT_PACKAGES=(
  cmake ninja-build ccache g++ pkg-config
  libjpeg62-turbo-dev libpng-dev zlib1g-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev
  libgloo-dev
  dataset-fashion-mnist
)
TORCH_VERSION=2.11.0
ONEDNN_VERSION=2023.2.0  # oneDNN 3.2, CPU only, GNU OpenMP: the CPU inference plan links it
PIP_PACKAGES=("torch==${TORCH_VERSION}" "onednn-devel-cpu-gomp==${ONEDNN_VERSION}")
PIP_NO_DEPS=()
PIP_CHECK='import importlib.metadata as m, sys
want = {"torch": "'"$TORCH_VERSION"'", "onednn-devel-cpu-gomp": "'"$ONEDNN_VERSION"'"}'
if [ "$TEST" = 1 ]; then
  APT_PACKAGES+=(libgtest-dev libgmock-dev googletest libbenchmark-dev clang libclang-rt-14-dev
                 plasma-workspace-wallpapers)
  PIP_PACKAGES+=("torchvision==0.26.0" "timm==1.0.31" "tensorflow-cpu==2.21.0" "safetensors" "numpy" "pillow"
                 "onnx==1.23.2" "onnxruntime==1.32.0" "openvino==2026.4.1")
  # Triton's ModelConfig protobuf for checking config.pbtxt; its other dependencies (gRPC clients, an older
  # ml_dtypes than TensorFlow's) are not needed for that one module.
  PIP_NO_DEPS=("tritonclient==2.73.0")
  PIP_CHECK+='
want.update({"torchvision": "0.26.0", "timm": "1.0.31", "tensorflow-cpu": "2.21.0", "onnx": "1.23.2",
             "onnxruntime": "1.32.0", "openvino": "2026.4.1", "tritonclient": "2.73.0"})
import safetensors, numpy, PIL  # noqa: F401'
fi
PIP_CHECK+='
for name, version in want.items():
    if m.version(name) != version:
        sys.exit(1)'

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "$PIP_CHECK" 2>/dev/null; then
  echo "[setup] pip install ${PIP_PACKAGES[*]} (large download on a fresh machine)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "${PIP_PACKAGES[@]}"
  if [ ${#PIP_NO_DEPS[@]} -gt 0 ]; then .venv/bin/python -m pip install -q --no-deps "${PIP_NO_DEPS[@]}"; fi
fi
echo "[setup] ok: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')$([ "$TEST" = 1 ] && echo ', test packages')"
