// A Triton Inference Server model repository for an exported ONNX model: <dir>/<name>/config.pbtxt (the
// onnxruntime backend, inputs / outputs matching the file, dynamic batching, an instance group, optionally
// TensorRT FP16 on GPUs), <dir>/<name>/1/model.onnx and <dir>/<name>/labels.txt (the class names of
// `logits`).
#pragma once
#include <string>
#include <vector>

#include "infer/onnx_export.h"
#include "run/config.h"

namespace convnets {

struct TritonOptions {
  std::string model_name;
  int64_t max_batch_size = 128;
  TritonInstanceKind instance_kind = TritonInstanceKind::kGpu;
  int64_t instance_count = 1;
  bool tensorrt_fp16 = false;  // GPU: ONNX Runtime's TensorRT execution provider in FP16
  int64_t max_queue_delay_microseconds = 100;
};

// The text-format ModelConfig (model_config.proto). Preferred batch sizes: the powers of two from 8 up to
// max_batch_size, and max_batch_size.
std::string triton_config_pbtxt(const OnnxTensorInfo& input, const std::vector<OnnxTensorInfo>& outputs,
                                const TritonOptions& options);

// Writes the repository (each file atomically); `labels` has one name per class.
void write_triton_repository(const std::string& directory, const std::string& onnx_bytes,
                             const std::string& config_pbtxt, const std::vector<std::string>& labels,
                             const std::string& model_name);

}  // namespace convnets
