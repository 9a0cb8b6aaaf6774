#!/usr/bin/env bash
# Configures and builds convnets (Release, Ninja, ccache when present) into build/.
#   bash scripts/build.sh            the app alone (what scripts/demo.sh needs)
#   bash scripts/build.sh --test     everything: the app, the test binaries, the layer checks, benchmarks
#   bash scripts/build.sh --jobs     prints the parallel job count it builds with, and exits
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cpus.sh
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${BUILD_JOBS:-$(usable_cpus)}
if [ "${1:-}" = "--jobs" ]; then echo "$JOBS"; exit 0; fi
echo "[build] $JOBS parallel jobs"
TESTS=OFF
[ "${1:-}" = "--test" ] && TESTS=ON
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
# A build directory configured the other way is reconfigured (the cache keeps everything else).
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || ! grep -q "^CONVNETS_BUILD_TESTS:BOOL=$TESTS$" "$BUILD_DIR/CMakeCache.txt"; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DCONVNETS_BUILD_TESTS=$TESTS
fi
if [ "$TESTS" = ON ]; then
  cmake --build "$BUILD_DIR" -j "$JOBS"
else
  cmake --build "$BUILD_DIR" -j "$JOBS" --target convnets
fi
