#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (C++ GoogleTest + Python references via CTest).
set -euo pipefail
cd "$(dirname "$0")/.."

# CPUs this process may really use: nproc honours the affinity mask but not a cgroup CPU quota, and a
# container limited to 2 CPUs by quota can still report every core of the host.
usable_cpus() {
  local n quota period
  n=$(nproc)
  if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r quota period < /sys/fs/cgroup/cpu.max || true
    if [ "${quota:-max}" != "max" ] && [ "${period:-0}" -gt 0 ]; then
      local q=$(((quota + period - 1) / period))
      [ "$q" -ge 1 ] && [ "$q" -lt "$n" ] && n=$q
    fi
  fi
  echo "$n"
}
JOBS=${CTEST_JOBS:-$(usable_cpus)}
# CTest runs one test per CPU; each computes on one thread (C++ tests, the CLI under test, the Python
# references), because OpenMP threads of several processes spinning on the same cores run many times slower.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

phase() { echo "[test] $(date -u +%H:%M:%S) $*"; }
start=$SECONDS
phase "setup"
bash scripts/setup.sh --test
phase "build ($((SECONDS - start)) s so far)"
bash scripts/build.sh --test
phase "ctest -j $JOBS ($((SECONDS - start)) s so far)"
cd "${BUILD_DIR:-build}"
status=0
ctest -j "$JOBS" --output-on-failure --timeout 1200 || status=$?
phase "done in $((SECONDS - start)) s, ctest exit $status"
exit $status
