// The inference-side modes: `eval` (a checkpoint or weights file over the validation split, raw and EMA
// weights), `predict` (top-k classes of one image or a directory of images) and `inference_benchmark`
// (forward passes only, batch-size sweep, throughput and latency percentiles).
#pragma once
#include <string>
#include <vector>

#include "infer/evaluate.h"
#include "train/train_config.h"

namespace convnets {

struct LoadedWeights {
  ConvNetPtr model;                // the raw weights
  ConvNetPtr ema_model;            // the EMA weights, when the checkpoint has them
  std::string source;              // the file read, or "random init"
  BatchNormConvention batch_norm;  // what the models run with (resolve_batch_norm)
};
// --weights (a checkpoint or a state dict), else the newest checkpoint in model_dir, else
// <model_dir>/final_weights.pt. `allow_random`: fall back to the random init with a warning.
LoadedWeights load_for_inference(const TrainConfig& config, const RunDevice& device, bool allow_random);

struct EvalModeResult {
  EvalResult raw;
  std::optional<EvalResult> ema;
};
EvalModeResult run_eval_mode(const TrainConfig& config);

struct Prediction {
  std::string file;
  std::vector<int64_t> classes;  // top-k, best first
  std::vector<double> probabilities;
};
std::vector<Prediction> run_predict(const TrainConfig& config);

struct InferenceBenchmarkRow {
  int64_t batch_size = 0;
  double images_per_second = 0;
  LatencyStats latency;  // per batch, ms
};
std::vector<InferenceBenchmarkRow> run_inference_benchmark(const TrainConfig& config);

}  // namespace convnets
