// Quantization-aware training (docs/int8.md, "Quantization-aware training"): the model's forward with the
// int8 form's rounding in it. It runs the ops of the model's inference graph (models/inference_graph.h) on
// the model's own modules — BatchNorm unfolded, in training mode while training, dropout and stochastic depth
// as the model has them — and rounds exactly the values the int8 form stores as int8 (int8_values) at the
// ranges it stores them with, and each convolution's and the classifier's weights on their per-output-channel
// grid. A residual reads the rounded value, as the int8 plan does. Gradients pass the rounding straight
// through (zero where a value was clamped). In eval mode it is the int8 simulation (run_quantized_graph) of
// the folded graph: rounding per channel commutes with folding BatchNorm's per-channel factor.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "models/inference_graph.h"
#include "models/quantization.h"

namespace convnets {

// x on its int8 grid (clamp(round(x / scale)) * scale, [-128, 127] or [0, 255]) with the straight-through
// estimator: the gradient is passed where x was inside the grid's range and is 0 where it was clamped.
torch::Tensor fake_quantize_ste(const torch::Tensor& x, double scale, bool is_unsigned);
// Weights on their per-output-channel grid, max |w| / levels per channel (a channel of zeros stays 0), the
// gradient passed straight through.
torch::Tensor fake_quantize_weights_ste(const torch::Tensor& weight, int levels = 127);

// The quantization of `graph` (the inference form of a model in quantization-aware training) at QAT's ranges,
// with the weight scales and fingerprint of its weights as they are now: what the int8 form of that model
// runs, and what `train --qat` writes into its model_dir.
Int8Calibration qat_calibration(const InferenceGraph& graph, const std::map<std::string, double>& amax,
                                const std::string& weights);

class QatForward {
 public:
  // `model`'s forward with its int8 values rounded at `amax` (by value_name: one range per int8 value, as
  // in the quantization file; std::invalid_argument naming a missing one). `model` must outlive this.
  QatForward(const ConvNetImpl& model, const std::string& arch, std::map<std::string, double> amax,
             int weight_levels = 127);
  torch::Tensor forward(const torch::Tensor& x, bool training) const;
  const std::map<std::string, double>& amax() const { return amax_; }

 private:
  InferenceGraph graph_;  // the ops' structure (their folded weights are dropped)
  std::vector<OpModules> modules_;
  std::vector<double> scale_;  // per value: its int8 scale, 0 for a float value
  std::vector<bool> unsigned_;
  std::vector<int> last_read_;  // per value: the last op reading it
  std::map<std::string, double> amax_;
  int weight_levels_;
};

}  // namespace convnets
