#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (C++ GoogleTest + Python references via CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest -j "$(nproc)" --output-on-failure --timeout 1200
