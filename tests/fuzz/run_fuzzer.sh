#!/usr/bin/env bash
# Builds one libFuzzer target with clang (+ AddressSanitizer, UndefinedBehaviorSanitizer) and runs it briefly.
# Usage: run_fuzzer.sh NAME WORK_DIR SECONDS [SEED_DIR]
set -euo pipefail
name=$1 work=$2 seconds=$3 seeds=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work/corpus_$name"
sources=(src/data/tfrecord.cpp src/data/example.cpp src/data/imagenet_record.cpp src/data/jpeg_codec.cpp src/util/crc32.cpp)
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I "$root/src" \
  "$root/tests/fuzz/${name}_fuzz.cpp" "${sources[@]/#/$root/}" -ljpeg -o "$work/${name}_fuzz"
corpora=("$work/corpus_$name")
[ -n "$seeds" ] && [ -d "$seeds" ] && corpora+=("$seeds")
"$work/${name}_fuzz" -artifact_prefix="$work/${name}_" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 "${corpora[@]}" 2>&1 | tail -n 12
