#!/usr/bin/env bash
# Side-by-side, one core each: convnets decode + random-resized crop + flip vs torchvision's PIL transform and
# NVIDIA DALI's CPU pipeline (the seeds' loader: decoders.image_random_crop + resize + flip), on the same
# ImageNet-sized JPEGs. DALI is installed into the venv here when missing (a bench extra, ~200 MB). Each measurement runs REPS times, interleaved; medians are reported
# (this VM's timings vary by +-20% from run to run).
# Usage: bench/run_decode_bench.sh [TILES=2000] [REPS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
tiles=${1:-2000}
reps=${2:-5}
photos=bench/.cache/photos
if [ "$(ls "$photos" 2>/dev/null | wc -l)" -lt "$tiles" ]; then
  rm -rf "$photos"
  .venv/bin/python bench/make_photo_tiles.py "$photos" "$tiles"
fi
bash scripts/build.sh >/dev/null
if ! .venv/bin/python -c "import nvidia.dali" 2>/dev/null; then
  echo "[bench] pip install nvidia-dali-cuda130 (CPU pipelines need no GPU)" >&2
  .venv/bin/python -m pip install -q nvidia-dali-cuda130
fi
results=$(mktemp)
for _ in $(seq "$reps"); do
  echo "ours $(taskset -c 0 build/bench/bench_decode "$photos" 2>/dev/null)" >>"$results"
  echo "exact $(taskset -c 0 build/bench/bench_decode "$photos" --exact 2>/dev/null)" >>"$results"
  echo "decode $(taskset -c 0 build/bench/bench_decode "$photos" --decode-only 2>/dev/null)" >>"$results"
  echo "tv $(taskset -c 0 .venv/bin/python bench/torchvision_decode_bench.py "$photos")" >>"$results"
  echo "tv_decode $(taskset -c 0 .venv/bin/python bench/torchvision_decode_bench.py "$photos" --decode-only)" >>"$results"
  echo "dali $(taskset -c 0 .venv/bin/python bench/dali_decode_bench.py "$photos")" >>"$results"
  echo "dali_decode $(taskset -c 0 .venv/bin/python bench/dali_decode_bench.py "$photos" --decode-only)" >>"$results"
done
python3 - "$results" "$tiles" "$reps" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    key, value = line.split()
    runs.setdefault(key, []).append(float(value))
m = {k: statistics.median(v) for k, v in runs.items()}
print(f"decode + RandomResizedCrop(224) + flip, {sys.argv[2]} JPEG tiles, 1 core, median of {sys.argv[3]} (images/s)")
print("| pipeline | images/s | vs torchvision |")
print("|---|---|---|")
print(f"| torchvision 0.26 transform on PIL | {m['tv']:.0f} | 1.00x |")
print(f"| NVIDIA DALI CPU pipeline (decoders.image_random_crop + resize + flip) | {m['dali']:.0f} | {m['dali'] / m['tv']:.2f}x |")
print(f"| convnets, full-resolution ROI decode | {m['exact']:.0f} | {m['exact'] / m['tv']:.2f}x |")
print(f"| convnets, ROI + DCT-scaled decode (default) | {m['ours']:.0f} | {m['ours'] / m['tv']:.2f}x |")
print(f"| decode only: PIL whole image | {m['tv_decode']:.0f} | |")
print(f"| decode only: DALI whole image | {m['dali_decode']:.0f} | |")
print(f"| decode only: convnets crop region | {m['decode']:.0f} | |")
PY
rm -f "$results"
