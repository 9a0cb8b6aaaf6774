// The inference form of a model, built once from its weights: every BatchNorm folded into the convolution
// before it (in float64, then cast), dropout and stochastic depth gone, and each activation and residual
// addition attached to the convolution that produces it. One description serves every consumer: the ONNX
// exporter (infer/onnx_export.h) writes it as a graph, the fast CPU path (infer/fast_inference.h) runs it
// with fused oneDNN kernels, and run_inference_graph below runs it with plain ATen ops (the reference).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "models/layers.h"

namespace convnets {

enum class InferenceOpKind {
  kConv,           // convolution + bias [+ residual] [+ activation]
  kMaxPool,        // kernel, stride, symmetric padding
  kGlobalAvgPool,  // mean over H and W, keeping them as 1x1
  kMul,            // input * other (broadcast: the squeeze-excitation gate)
  kLinear,         // flatten, then input @ weight^T + bias
};

struct InferenceOp {
  InferenceOpKind kind = InferenceOpKind::kConv;
  int input = 0, output = 0;
  int other = -1;  // kConv: a value added before the activation (the residual); kMul: the second operand
  torch::Tensor weight, bias;  // kConv [out, in / groups, k, k]; kLinear [out, in]
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
  Activation activation = Activation::kNone;
  std::string name;  // the module it comes from, in torchvision's names ("layer1.0.conv1", "features.0")
};

// Values are numbered: 0 is the input (normalised float NCHW), each op writes one new value, in order.
struct InferenceGraph {
  std::string arch;
  std::vector<InferenceOp> ops;
  int num_values = 1;
  int output = 0;  // the logits
  int64_t num_classes = 0;
};

// The inference form of `model` (a ResNet or an EfficientNet of the zoo; its BatchNorm layers' running
// statistics and eps are what is folded, so the model's train / eval mode does not matter). The folded
// weights are computed in float64 and kept as `dtype` (float32; float64 for exact checks).
InferenceGraph inference_graph(const ConvNetImpl& model, const std::string& arch,
                               torch::ScalarType dtype = torch::kFloat);

// Runs the graph with ATen's reference ops in `x`'s dtype (float32, or float64 for exact checks): the
// logits. Matches the model's eval-mode forward up to rounding.
torch::Tensor run_inference_graph(const InferenceGraph& graph, const torch::Tensor& x);

}  // namespace convnets
