#!/usr/bin/env bash
# README command 1: set up, build, and run the main job on the embedded default data: ResNet-18 trained on
# Fashion-MNIST (Debian's dataset-fashion-mnist) through the TFRecord path, then evaluated.
# EPOCHS (default 1, about 7 minutes on 2 cores; the recipe runs 12) and WORK (default runs/demo) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BIN=${BUILD_DIR:-build}/app/convnets
WORK=${WORK:-runs/demo}
EPOCHS=${EPOCHS:-1}
"$BIN" models
if [ ! -f "$WORK/data/classes.txt" ]; then
  "$BIN" prepare_data --format fashion_mnist --input /usr/share/datasets/fashion-mnist --output "$WORK/data"
fi
# Resumes if $WORK/model already holds checkpoints of this run (Ctrl-C stops cleanly with a checkpoint).
"$BIN" train_and_eval --recipe recipes/fashion_mnist_resnet18.yaml --data_dir "$WORK/data" \
  --model_dir "$WORK/model" --num_iter "$EPOCHS"
"$BIN" eval --model_dir "$WORK/model" --log_filename eval_log.json
echo
echo "per-epoch results ($WORK/model/summary.csv):"
column -s, -t < "$WORK/model/summary.csv"
echo "checkpoints, config.yaml, log.json (DLLogger) and final_weights.pt (loads in torchvision) are in $WORK/model"
