# Sourced by build.sh and test.sh: usable_cpus prints how many CPUs this process may really use.
# - GNU nproc honours OMP_NUM_THREADS and OMP_THREAD_LIMIT, which test.sh sets to 1 for the tests; a job count
#   must not follow them (it made the whole build `ninja -j 1`), so they are unset for the count.
# - nproc honours the affinity mask but not a cgroup CPU quota: a container limited to 2 CPUs by quota can
#   still report every core of the host, so the quota caps the count.
usable_cpus() {
  local n quota period
  n=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r quota period < /sys/fs/cgroup/cpu.max || true
    if [ "${quota:-max}" != "max" ] && [ "${period:-0}" -gt 0 ]; then
      local q=$(((quota + period - 1) / period))
      [ "$q" -ge 1 ] && [ "$q" -lt "$n" ] && n=$q
    fi
  fi
  echo "$n"
}
