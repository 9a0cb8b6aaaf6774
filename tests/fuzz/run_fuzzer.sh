#!/usr/bin/env bash
# Builds one libFuzzer target with clang (+ AddressSanitizer, UndefinedBehaviorSanitizer) and runs it briefly,
# with a memory cap: one allocation over MALLOC_LIMIT_MB, or a resident set over RSS_LIMIT_MB, is a failure.
# Usage: run_fuzzer.sh NAME WORK_DIR SECONDS [SEED_DIR]
set -euo pipefail
name=$1 work=$2 seconds=$3 seeds=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work/corpus_$name"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I "$root/src")
libs=()
case $name in
  pickle)
    # The unpickler holds LibTorch tensors: headers and libraries of the project venv's torch.
    torch=$("$root/.venv/bin/python" -c "import os, torch; print(os.path.dirname(torch.__file__))")
    sources=(src/util/pickle.cpp)
    flags+=(-isystem "$torch/include" -isystem "$torch/include/torch/csrc/api/include" -D_GLIBCXX_USE_CXX11_ABI=1
            -fno-sanitize=vptr)
    libs=(-L "$torch/lib" -Wl,-rpath,"$torch/lib" -ltorch -ltorch_cpu -lc10)
    ;;
  png) sources=(src/data/png_codec.cpp src/data/image_limits.cpp) libs=(-lpng -lz) ;;
  *)
    sources=(src/data/tfrecord.cpp src/data/example.cpp src/data/imagenet_record.cpp src/data/jpeg_codec.cpp
             src/data/image_limits.cpp src/util/crc32.cpp)
    libs=(-ljpeg)
    ;;
esac
clang++ "${flags[@]}" "$root/tests/fuzz/${name}_fuzz.cpp" "${sources[@]/#/$root/}" "${libs[@]}" -o "$work/${name}_fuzz"
corpora=("$work/corpus_$name")
[ -n "$seeds" ] && [ -d "$seeds" ] && corpora+=("$seeds")
"$work/${name}_fuzz" -artifact_prefix="$work/${name}_" -max_total_time="$seconds" -max_len=65536 \
  -malloc_limit_mb="${MALLOC_LIMIT_MB:-512}" -rss_limit_mb="${RSS_LIMIT_MB:-2048}" -print_final_stats=1 \
  "${corpora[@]}" 2>&1 | tail -n 12
exit "${PIPESTATUS[0]}"
