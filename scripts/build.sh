#!/usr/bin/env bash
# Configures and builds convnets (Release, Ninja, ccache when present) into build/.
#   bash scripts/build.sh            the app alone (what scripts/demo.sh needs)
#   bash scripts/build.sh --test     everything: the app, the test binaries, the layer checks, benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
TESTS=OFF
[ "${1:-}" = "--test" ] && TESTS=ON
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
# A build directory configured the other way is reconfigured (the cache keeps everything else).
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || ! grep -q "^CONVNETS_BUILD_TESTS:BOOL=$TESTS$" "$BUILD_DIR/CMakeCache.txt"; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DCONVNETS_BUILD_TESTS=$TESTS
fi
if [ "$TESTS" = ON ]; then
  cmake --build "$BUILD_DIR" -j "$(nproc)"
else
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target convnets
fi
