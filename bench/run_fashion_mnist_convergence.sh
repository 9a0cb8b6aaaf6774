#!/usr/bin/env bash
# Convergence benchmark (issue: training engine, §8): ResNet-18 on real Fashion-MNIST with
# recipes/fashion_mnist_resnet18.yaml, on this machine's CPU. Prints the best test top-1 and the wall time.
# usage: bench/run_fashion_mnist_convergence.sh [WORK_DIR] [extra convnets flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build}/app/convnets
WORK=${1:-/tmp/convnets_fashion_mnist}
shift || true
DATA=$WORK/data
RUN=$WORK/run
if [ ! -f "$DATA/classes.txt" ]; then
  "$BIN" prepare_data --format fashion_mnist --input /usr/share/datasets/fashion-mnist --output "$DATA"
fi
rm -rf "$RUN"
start=$(date +%s)
"$BIN" train_and_eval --recipe recipes/fashion_mnist_resnet18.yaml --data_dir "$DATA" --model_dir "$RUN" "$@"
end=$(date +%s)
echo
echo "per-epoch results ($RUN/summary.csv):"
column -s, -t < "$RUN/summary.csv"
best=$(awk -F, 'NR > 1 && $7 > best { best = $7 } END { print best }' "$RUN/summary.csv")
echo "best test top-1: $best   wall time: $((end - start)) s   ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
