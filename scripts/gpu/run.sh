#!/usr/bin/env bash
# GPU bring-up in one call (docs/gpu.md): run from the repo root on a machine with an NVIDIA GPU, its python3
# holding torch 2.11 + CUDA 13, no network. Needs .gpu/ filled by scripts/gpu/fetch_deps.sh on a machine that
# has a network (the device tool carries it: `carry: [".gpu"]`).
#
#   bash scripts/gpu/run.sh [PART ...]      PART: tests | bench | loader | compile   (default: tests bench loader)
#
# - build: unpacks the Debian packages of .gpu/debs into a prefix (dpkg -x; nothing is installed), configures
#   against python3's torch (its LibTorch, its NCCL) and builds convnets, test_gpu and dist_worker with all
#   cores, in the background while the correctness checks run on the carried binaries of the same commit
#   (.gpu/prebuilt, same torch ABI); the benchmarks wait for the build and use its binaries when it succeeded.
# - tests: test_gpu (CPU vs CUDA, device batches, fp16 GradScaler) and tests/gpu/check_gpu_cli.py (NCCL / Gloo
#   on CUDA, fp16 with data parallel, convnets train under torchrun, a short Fashion-MNIST run).
# - bench: bench/gpu/side_by_side.py, convnets vs PyTorch eager (bf16, channels_last, synthetic data).
# - loader: ResNet-50 training fed by JPEG TFRecords cut from photos (16 decode workers) vs synthetic data.
# - compile: the same PyTorch cases under torch.compile (default mode; slow to compile, run last).
# Writes $OUT/run.log, results.md, bench.jsonl, test_gpu.txt, checks.txt, build.log, env.txt.
# GPU=0 (or no GPU) is the dry run: everything on the CPU at toy sizes, to check this script.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-/tmp/convnets_gpu_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1
T0=$(date +%s)
PARTS=${*:-tests bench loader}
PY=${PYTHON:-python3}
section() { echo; echo "=== [$(($(date +%s) - T0)) s] $*"; }
has() { [[ " $PARTS " == *" $1 "* ]]; }

GPU=${GPU:-$(command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)}
JOBS=$(nproc)

section "machine"
{
  date -u
  nvidia-smi 2>&1 | head -20
  "$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "torchvision", torchvision.__version__, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")'
  "$PY" -c 'import torch; print("nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else "n/a")' 2>&1
  g++ --version | head -1; cmake --version | head -1; ninja --version; nvcc --version | tail -2
  echo "cores $(nproc), memory $(free -g | awk '/Mem:/ {print $2}') GB"; lscpu | grep -E "Model name|Flags" | cut -c1-200
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

section "dependencies (dpkg -x into a prefix)"
DEPS=/tmp/convnets_deps
rm -rf "$DEPS" && mkdir -p "$DEPS"
for deb in .gpu/debs/*.deb; do dpkg -x "$deb" "$DEPS" || echo "cannot unpack $deb"; done
TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ls "$DEPS/usr/lib/x86_64-linux-gnu" | head -30

section "build in the background (log: build.log)"
BUILD=build-gpu
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  echo "SKIP_BUILD=1: using $BUILD if a previous call built it, else the carried binaries"
  (test -x "$BUILD/app/convnets") >"$OUT/build.log" 2>&1 &
else
(
  export CMAKE_POLICY_VERSION_MINIMUM=3.5
  set -x
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVNETS_PYTHON="$(command -v "$PY")" \
    -DCMAKE_PREFIX_PATH="$DEPS/usr" -DTORCH_CUDA_ARCH_LIST=9.0 \
    -DCMAKE_CXX_FLAGS="-isystem $DEPS/usr/include/x86_64-linux-gnu" ${CMAKE_EXTRA:-} &&
    nice -n 10 ninja -C "$BUILD" -j "$JOBS" convnets test_gpu dist_worker
) >"$OUT/build.log" 2>&1 &
fi
BUILD_PID=$!

# Until the build is done, the carried binaries of the same commit (fallback: a build from an earlier run).
BIN=.gpu/prebuilt
for t in convnets test_gpu dist_worker; do [ -x "$BIN/$t" ] || echo "missing $BIN/$t"; done

if has tests; then
  section "test_gpu (CPU vs CUDA, device batches, GradScaler)"
  if [ "$GPU" = 1 ]; then
    timeout 150 "$BIN/test_gpu" 2>&1 | tee "$OUT/test_gpu.txt"
  else
    CONVNETS_GPU_DRY_RUN=1 timeout 150 "$BIN/test_gpu" 2>&1 | tee "$OUT/test_gpu.txt"
  fi
  echo "test_gpu exit: ${PIPESTATUS[0]}"

  section "multi-process and end-to-end checks"
  DRY=(); [ "$GPU" = 1 ] || DRY=(--dry_run)
  timeout 240 "$PY" tests/gpu/check_gpu_cli.py "$BIN/convnets" "$BIN/dist_worker" .gpu/fm /tmp/convnets_gpu_checks \
    "${DRY[@]}" 2>&1 | tee "$OUT/checks.txt"
  echo "checks exit: ${PIPESTATUS[0]}"
fi

section "waiting for the build"
wait "$BUILD_PID"
BUILD_RC=$?
echo "build exit: $BUILD_RC ($(($(date +%s) - T0)) s since start)"
tail -5 "$OUT/build.log"
if [ "$BUILD_RC" = 0 ]; then
  BIN=$BUILD/app
  TEST_BIN=$BUILD/tests
  if has tests; then
    section "test_gpu again, built here"
    if [ "$GPU" = 1 ]; then
      timeout 90 "$TEST_BIN/test_gpu" --gtest_brief=1 2>&1 | tail -15
    else
      CONVNETS_GPU_DRY_RUN=1 timeout 90 "$TEST_BIN/test_gpu" --gtest_brief=1 2>&1 | tail -15
    fi
    echo "test_gpu (built here) exit: ${PIPESTATUS[0]}"
  fi
fi
CONVNETS=$BIN/convnets
echo "benchmarks use $CONVNETS"

DRYB=(); [ "$GPU" = 1 ] || DRYB=(--dry_run)
if has bench; then
  section "side by side: convnets vs PyTorch eager"
  timeout 300 "$PY" bench/gpu/side_by_side.py --convnets "$CONVNETS" --out "$OUT" --iters "${ITERS:-40}" \
    --warmup "${WARMUP:-15}" --deadline_s "${BENCH_DEADLINE_S:-220}" "${DRYB[@]}"
fi

if has loader; then
  section "real-data loader: JPEG TFRecords from photos"
  TILES=/tmp/convnets_tiles
  N=$([ "$GPU" = 1 ] && echo 6144 || echo 64)
  rm -rf "$TILES" /tmp/convnets_tiles_tf
  "$PY" bench/make_photo_tiles.py "$TILES/train" "$N" --photos .gpu/photos --classes 100 --jobs "$JOBS" &&
    "$CONVNETS" prepare_data --format image_folder --input "$TILES" --output /tmp/convnets_tiles_tf \
      --train_shards 16 --validation_shards 1 | tail -1
  du -sh /tmp/convnets_tiles_tf
  if [ "$GPU" = 1 ]; then
    ARGS=(--batch_size 256 --num_iter 60 --warmup_steps 20)
  else
    ARGS=(--batch_size 8 --num_iter 4 --warmup_steps 1 --image_size 64 --device cpu)
  fi
  for workers in "$JOBS"; do
    timeout 120 "$CONVNETS" training_benchmark --arch resnet50 --num_classes 100 --data_dir /tmp/convnets_tiles_tf \
      --workers "$workers" --amp --iter_unit batch --augmentation none --display_every 10 "${ARGS[@]}" \
      --model_dir /tmp/convnets_loader_bench 2>&1 | grep -E "DLL .*(train_throughput|Epoch)|img/s" | tail -4
    "$PY" - "$OUT/bench.jsonl" "$workers" <<'PY'
import json, sys
rows = [json.loads(l[5:]) for l in open("/tmp/convnets_loader_bench/log.json") if l.startswith("DLLL ")]
final = [r["data"] for r in rows if r["type"] == "LOG" and r["step"] == [] and "train_throughput" in r["data"]][-1]
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"case": "loader/rn50/convnets_jpeg_tfrecords", "arch": "resnet50", "batch": final["global_batch_size"],
                        "workers": int(sys.argv[2]), "images_per_s": final["train_throughput"],
                        "step_ms_p50": final["train_step_latency_p50"], "step_ms_p99": final["train_step_latency_p99"]}) + "\n")
print("loader:", final["train_throughput"], "images/s")
PY
    rm -rf /tmp/convnets_loader_bench
  done
fi

if has compile; then
  section "PyTorch under torch.compile"
  timeout 560 "$PY" bench/gpu/side_by_side.py --convnets "$CONVNETS" --out "$OUT" --iters "${ITERS:-40}" \
    --warmup "${WARMUP:-15}" --cases "${COMPILE_CASES:-rn50,b0}" --compile "${COMPILE_MODES:-default}" \
    --compile_cases "${COMPILE_CASES:-rn50,b0}" --skip_eager --deadline_s "${COMPILE_DEADLINE_S:-500}" "${DRYB[@]}"
fi

section "results"
{
  echo "# GPU run $(date -u +%Y-%m-%dT%H:%MZ), parts: $PARTS"
  echo
  grep -E "^torch|^GPU|NVIDIA H|Driver Version" "$OUT/env.txt" | head -4
  echo
  [ -f "$OUT/test_gpu.txt" ] && grep -E "^\[  (PASSED|FAILED|SKIPPED) |^  (cpu|device)|^resnet|^efficientnet|vs float64" "$OUT/test_gpu.txt"
  echo
  [ -f "$OUT/checks.txt" ] && grep -E "^(ok|FAIL) |GPU_CHECKS" "$OUT/checks.txt"
  echo
  [ -f "$OUT/bench.jsonl" ] && "$PY" bench/gpu/make_table.py "$OUT/bench.jsonl"
  echo
  echo "build here: exit $BUILD_RC; total $(($(date +%s) - T0)) s"
} >"$OUT/results.md" 2>&1
cat "$OUT/results.md"
