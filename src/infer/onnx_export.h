// An ONNX model (opset 17, IR version 8) of a model's inference form (float32, float16, or int8 as QDQ), written from the inference graph by a
// small protobuf writer (no ONNX library at export time): Conv (BatchNorm folded), Relu, SiLU as
// Sigmoid * Mul, squeeze-excitation as GlobalAveragePool -> Conv -> SiLU -> Conv -> Sigmoid -> Mul, the head
// as GlobalAveragePool -> Flatten -> Gemm. Input `input`: float32 NCHW, normalised, batch dimension `batch`
// dynamic, spatial size fixed; output `logits`.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "models/inference_graph.h"

namespace convnets {

struct QuantizedGraph;

struct OnnxExportOptions {
  int64_t image_size = 224;
  // Adds `probabilities` (Softmax over the logits) and `classes` (the indices of the `topk` largest, TopK).
  bool probabilities = false;
  int64_t topk = 5;
  // Half-precision weights and compute (GPU runtimes); input and outputs stay float32 (Cast at both ends).
  bool fp16 = false;
  // metadata_props: what a client needs to preprocess (architecture, size, mean / std, ...), as key/value.
  std::vector<std::pair<std::string, std::string>> metadata;
  std::string producer_version;
  // int8 (models/quantization.h; the graph passed is its graph): QDQ. Each int8 value passes through
  // QuantizeLinear -> DequantizeLinear with its scale and zero point 0 (uint8 where it is non-negative, int8
  // elsewhere), each convolution's and the classifier's weights are int8 initializers with per-output-channel
  // scales behind a DequantizeLinear (axis 0), their biases int32 at the input's scale times the weights'.
  // ONNX Runtime and OpenVINO fuse the pattern into their int8 kernels. Not with fp16.
  const QuantizedGraph* int8 = nullptr;
};

std::string onnx_model_bytes(const InferenceGraph& graph, const OnnxExportOptions& options);

// The graph's outputs in order, with their element types and shapes (-1: the batch dimension), for the Triton
// configuration that serves the file.
struct OnnxTensorInfo {
  std::string name;
  bool int64 = false;  // else float32
  std::vector<int64_t> dims;
};
std::vector<OnnxTensorInfo> onnx_outputs(const InferenceGraph& graph, const OnnxExportOptions& options);
OnnxTensorInfo onnx_input(const OnnxExportOptions& options);

}  // namespace convnets
