// The inference form on the CPU with oneDNN's fused kernels, the building blocks torch.compile's frozen CPU
// path uses, reached through the dispatcher: each convolution with its folded BatchNorm, activation and
// residual addition is one mkldnn::_convolution_pointwise call on weights prepacked (reordered) for this
// machine once per input shape; the squeeze-excitation and the classifier are mkldnn::_linear_pointwise
// calls; activations stay channels_last. float32, or bfloat16 where the CPU has AVX512-BF16 / AMX.
#pragma once
#include <torch/types.h>

#include <map>
#include <mutex>
#include <vector>

#include "models/inference_graph.h"

namespace convnets {

// Whether this build and CPU have the oneDNN fusion kernels (x86-64 LibTorch with mkldnn).
bool fast_inference_available();
// Whether the CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX).
bool fast_inference_bf16_supported();

class FastInference {
 public:
  // `dtype`: kFloat, or kBFloat16 (weights and activations; logits come back float32).
  explicit FastInference(const InferenceGraph& graph, torch::ScalarType dtype = torch::kFloat);
  // `x`: normalised float NCHW (any memory format); returns float32 logits [N, classes].
  torch::Tensor forward(const torch::Tensor& x);
  torch::ScalarType dtype() const { return dtype_; }

 private:
  struct Conv {
    const InferenceOp* op;
    torch::Tensor weight, bias;  // in dtype_, plain layout (packed copies per input shape below)
    std::map<std::vector<int64_t>, torch::Tensor> packed;
    bool as_linear = false;  // a 1x1 convolution on a 1x1 map (squeeze-excitation): a matrix product
    torch::Tensor linear_weight;
  };
  const torch::Tensor& packed_weight(Conv& conv, const torch::Tensor& x);

  InferenceGraph graph_;
  std::vector<int> last_read_;  // per value: the index of the last op that reads it (models/buffer_plan.h)
  torch::ScalarType dtype_;
  std::vector<Conv> convs_;  // per op (empty entries for non-convolutions)
  torch::Tensor fc_weight_, fc_bias_;
  std::mutex mutex_;  // guards the packed-weight caches
};

}  // namespace convnets
