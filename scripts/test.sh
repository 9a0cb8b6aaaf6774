#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (C++ GoogleTest + Python references via CTest).
# `bash scripts/test.sh --jobs` prints the parallel job counts of the build and of CTest, and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/cpus.sh
JOBS=${CTEST_JOBS:-$(usable_cpus)}
# CTest runs one test per CPU; each computes on one thread (C++ tests, the CLI under test, the Python
# references), because OpenMP threads of several processes spinning on the same cores run many times slower.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The suite starts thousands of short processes and models: glibc's default returns every freed block over
# 128 KiB to the kernel, which then zeroes fresh pages for the next one (a quarter of the suite's CPU time was
# the kernel's). Blocks up to 32 MiB stay in the heap instead; it changes no result.
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296}
if [ "${1:-}" = "--jobs" ]; then echo "build $(bash scripts/build.sh --jobs) ctest $JOBS"; exit 0; fi

phase() { echo "[test] $(date -u +%H:%M:%S) $*"; }
start=$SECONDS
phase "setup"
bash scripts/setup.sh --test
phase "build ($((SECONDS - start)) s so far)"
bash scripts/build.sh --test
phase "ctest -j $JOBS ($((SECONDS - start)) s so far)"
cd "${BUILD_DIR:-build}"
set +e
ctest -j "$JOBS" --output-on-failure --timeout 1200 | tee ctest_output.txt
status=${PIPESTATUS[0]}
set -e
# Only the gpu.* tests may skip (no CUDA device); any other skip fails the run.
unexpected=$(grep -E '^\s*[0-9]+ - .* \(Skipped\)$' ctest_output.txt | grep -v -E ' - gpu\.' || true)
if [ -n "$unexpected" ]; then
  echo "[test] tests skipped that must run:"
  echo "$unexpected"
  status=1
fi
phase "done in $((SECONDS - start)) s, ctest exit $status"
exit $status
