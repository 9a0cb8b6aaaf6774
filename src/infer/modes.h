// The inference-side modes: `eval` (a checkpoint or weights file over the validation split, raw and EMA
// weights), `predict` (top-k classes of one image or a directory of images) and `inference_benchmark`
// (forward passes only, batch-size sweep, throughput and latency percentiles). Each returns its results;
// what they print as they go (and the predictions, through format_predictions) goes to the context's
// console.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "models/quantization.h"
#include "run/config.h"
#include "run/evaluate.h"
#include "run/run_context.h"
#include "util/latency.h"

namespace convnets {

struct EvalModeResult {
  EvalResult raw;
  std::optional<EvalResult> ema;
};
EvalModeResult run_eval_mode(const RunConfig& config, const RunContext& context = {});

struct Prediction {
  std::string file;
  std::vector<int64_t> classes;  // top-k, best first
  std::vector<double> probabilities;
};
struct PredictResult {
  std::vector<Prediction> predictions;   // in file order
  std::vector<std::string> class_names;  // empty when unknown
  std::vector<std::string> unreadable;   // files that were not images (each reported as it was met)
  size_t files = 0;                      // images found
  std::string summary;                   // "N image(s): decode+transform X ms/image, model Y ms/image (cpu)"
};
// Predicts every image; an unreadable one is reported and skipped when there are several, an error when
// it is the only one. Writes predict_output (JSON) when set.
PredictResult run_predict(const RunConfig& config, const RunContext& context = {});
// The predictions as predict prints them: a table per image (text), a JSON array, or CSV rows
// (file,rank,class,probability,name).
std::string format_predictions(const PredictResult& result, PredictFormat format);

struct InferenceBenchmarkRow {
  int64_t batch_size = 0;
  double images_per_second = 0;
  LatencyStats latency;  // per batch, ms
};
std::vector<InferenceBenchmarkRow> run_inference_benchmark(const RunConfig& config,
                                                           const RunContext& context = {});

// `quantize`: --calibration_images images of the data_dir's calibration split through the model's inference
// form (raw and EMA weights), each int8 value's range by --calibration_method, written atomically as
// <model_dir>/quantization.safetensors (models/quantization.h).
struct QuantizeResult {
  std::string path;
  QuantizationFile file;
};
QuantizeResult run_quantize(const RunConfig& config, const RunContext& context = {});

}  // namespace convnets
