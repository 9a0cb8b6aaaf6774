#!/usr/bin/env bash
# scripts/test.sh builds and tests with one job per usable CPU, even with OMP_NUM_THREADS=1 in its environment
# (it sets that itself for the tests, and GNU nproc follows it: the build once ran as `ninja -j 1`). The
# expected count is worked out here, not with scripts/cpus.sh: every CPU of the affinity mask, capped by a
# cgroup CPU quota.
set -euo pipefail
cd "$(dirname "$0")/../.."
expected=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
if [ -r /sys/fs/cgroup/cpu.max ]; then
  read -r quota period < /sys/fs/cgroup/cpu.max
  if [ "$quota" != max ]; then
    capped=$(((quota + period - 1) / period))
    [ "$capped" -lt "$expected" ] && expected=$capped
  fi
fi
got=$(OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 bash scripts/test.sh --jobs)
echo "usable CPUs: $expected; scripts/test.sh under OMP_NUM_THREADS=1: $got"
[ "$got" = "build $expected ctest $expected" ] || { echo "FAILED: expected build $expected ctest $expected"; exit 1; }
echo "ok"
