// Symmetric int8 quantization of a model's inference form (docs/int8.md): which values are stored as 8-bit
// integers and at what scale, the per-output-channel weight scales, the arithmetic that follows from them
// (simulated here in floating point: the reference of every int8 backend and what --int8 runs on CUDA), and
// the quantization file `convnets quantize` writes into a model_dir.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "models/calibration.h"
#include "models/inference_graph.h"

namespace convnets {

// What the int8 form stores as 8-bit integers: every value a convolution or the classifier reads as its
// input (so every convolution, stem, depthwise and squeeze-excitation ones included, and the classifier
// multiply int8 by int8; a residual read from such a value is read as stored). The rest (a depthwise output
// that only the squeeze-excitation reads, the gates, the logits) stays float.
std::vector<bool> int8_values(const InferenceGraph& graph);
// Whether each value is >= 0 by construction (after a ReLU, pooled or multiplied from such values): stored
// unsigned, 255 levels; the others signed, 127 levels (symmetric, no zero point).
std::vector<bool> nonnegative_values(const InferenceGraph& graph);
// A value's name in the quantization file: "input" for value 0, else the name of the op that makes it.
std::string value_name(const InferenceGraph& graph, int value);

// Per output channel: max |w| / 127 over the channel's weights (a channel of zeros: 1, so it stays 0).
torch::Tensor weight_scales(const torch::Tensor& weight);

// The SHA-256 of a graph's weights and biases in float32: which weights a quantization was calibrated for.
std::string graph_fingerprint(const InferenceGraph& graph);

// One set of weights' quantization, as calibrated.
struct Int8Calibration {
  std::string weights;                                 // which weights: "raw", "ema", or a file name
  std::string fingerprint;                             // graph_fingerprint of those weights
  std::map<std::string, double> amax;                  // per int8 value, by value_name
  std::map<std::string, torch::Tensor> weight_scales;  // per convolution / classifier, by op name [out]
};

// Gathers the |x| histograms of a graph's int8 values over calibration batches: what `convnets quantize`
// runs.
class Int8Calibrator {
 public:
  explicit Int8Calibrator(InferenceGraph graph);  // its weights on the device of the batches to come
  // One batch of normalised images through the float graph.
  void observe(const torch::Tensor& x);
  // The ranges by `method` and the weight scales, for the weights called `weights`. A value that was 0 on
  // every image gets range 1 (it stays 0 whatever the range) and its name is added to `all_zero`.
  Int8Calibration result(const std::string& weights, CalibrationMethod method, double percentile,
                         std::vector<std::string>* all_zero = nullptr) const;
  const InferenceGraph& graph() const { return graph_; }

 private:
  InferenceGraph graph_;
  std::vector<bool> int8_, nonnegative_;
  std::vector<AbsHistogram> histograms_;  // per value (used where int8)
};

// A graph ready to run its int8 arithmetic.
struct QuantizedGraph {
  InferenceGraph graph;             // weights already rounded to their int8 grid (w = q * scale)
  std::vector<double> value_scale;  // per value: its scale; 0 for a float value
  std::vector<bool> value_unsigned;
  // Per op: the scale of each output channel's integer weights (float32 [out]; undefined where the op has
  // no int8 weights), and their range [-weight_levels, weight_levels].
  std::vector<torch::Tensor> weight_scale;
  int weight_levels = 127;
};
// Checks the calibration against the graph (the same weights, every int8 value and weight scale present,
// finite and > 0, nothing else) and throws std::runtime_error naming `context` and the key otherwise.
// `weight_levels`: 127 (8-bit weights), or 63 where the int8 kernels would saturate 8-bit ones (the oneDNN
// plan without VNNI, cpu/onednn_plan.h): the calibrated scales (max |w| / 127) are then widened by 127 / 63.
QuantizedGraph quantize_graph(InferenceGraph graph, const Int8Calibration& calibration,
                              const std::string& context, int weight_levels = 127);
// An op's weights as the integers of their grid, int8 (exact: a quantized graph's weights are q * scale per
// output channel): what the int8 kernels and the QDQ export store. `scale`: QuantizedGraph::weight_scale.
torch::Tensor integer_weights(const InferenceOp& op, const torch::Tensor& scale, int levels);
// The logits of the int8 arithmetic, simulated in x's dtype (float32; float64 for the reference): each int8
// value rounded to nearest (ties to even) on its grid and clamped to [-128, 127] (signed, as ONNX's
// QuantizeLinear and a u8 with zero point 128) or [0, 255] (unsigned), products and sums exact in the
// integers up to the dtype's rounding, biases in float.
torch::Tensor run_quantized_graph(const QuantizedGraph& graph, const torch::Tensor& x);
// One value on its int8 grid: clamp(round(x / scale), lo, hi) * scale.
torch::Tensor fake_quantize(const torch::Tensor& x, double scale, bool is_unsigned);

// <model_dir>/quantization.safetensors: every calibrated set of weights of one model (raw and EMA).
struct QuantizationFile {
  std::string arch;
  int64_t num_classes = 0;
  CalibrationMethod method = CalibrationMethod::kPercentile;
  double percentile = 99.99;
  int64_t images = 0, image_size = 0;
  // Written by quantization-aware training (`train --qat`): the ranges are the fixed ones it trained with
  // (every set has them) and the sets are the weights it saved, each with its own weight scales.
  bool qat = false;
  std::vector<Int8Calibration> sets;
};
inline constexpr const char* kQuantizationFileName = "quantization.safetensors";
// Written atomically (a reader sees the old file or the new one).
void save_quantization(const std::string& path, const QuantizationFile& file);
// Reads and checks the file's structure and values (finite, > 0); throws std::runtime_error naming the path.
QuantizationFile load_quantization(const std::string& path);
// The set calibrated for `graph`'s weights; an error naming the file when there is none (other weights,
// another architecture or class count).
const Int8Calibration& calibration_for(const QuantizationFile& file, const InferenceGraph& graph,
                                       const std::string& path);

const char* calibration_method_name(CalibrationMethod method);

}  // namespace convnets
