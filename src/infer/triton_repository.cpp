#include "infer/triton_repository.h"

#include <filesystem>

#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

// Triton's dims leave out the batch dimension (max_batch_size > 0).
std::string dims(const OnnxTensorInfo& t) {
  std::string s;
  for (size_t i = 1; i < t.dims.size(); ++i) s += (s.empty() ? "" : ", ") + std::to_string(t.dims[i]);
  return "[ " + s + " ]";
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string triton_config_pbtxt(const OnnxTensorInfo& input, const std::vector<OnnxTensorInfo>& outputs,
                                const TritonOptions& o) {
  std::string s;
  s += "name: " + quoted(o.model_name) + "\n";
  s += "backend: \"onnxruntime\"\n";
  s += "max_batch_size: " + std::to_string(o.max_batch_size) + "\n";
  s += "input [\n  {\n    name: " + quoted(input.name) +
       "\n    data_type: TYPE_FP32\n    format: FORMAT_NCHW\n" + "    dims: " + dims(input) + "\n  }\n]\n";
  s += "output [\n";
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& out = outputs[i];
    s += "  {\n    name: " + quoted(out.name) +
         "\n    data_type: " + (out.int64 ? "TYPE_INT64" : "TYPE_FP32") + "\n    dims: " + dims(out) + "\n";
    if (out.name == "logits" || out.name == "probabilities") s += "    label_filename: \"labels.txt\"\n";
    s += std::string("  }") + (i + 1 < outputs.size() ? "," : "") + "\n";
  }
  s += "]\n";
  std::string preferred;
  for (int64_t b = 8; b < o.max_batch_size; b *= 2) preferred += std::to_string(b) + ", ";
  preferred += std::to_string(o.max_batch_size);
  s += "dynamic_batching {\n  preferred_batch_size: [ " + preferred +
       " ]\n  max_queue_delay_microseconds: " + std::to_string(o.max_queue_delay_microseconds) + "\n}\n";
  s += "instance_group [\n  {\n    count: " + std::to_string(o.instance_count) +
       "\n    kind: " + (o.instance_kind == TritonInstanceKind::kGpu ? "KIND_GPU" : "KIND_CPU") +
       "\n  }\n]\n";
  if (o.tensorrt_fp16 && o.instance_kind == TritonInstanceKind::kGpu) {
    s += "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n"
         "        name: \"tensorrt\"\n"
         "        parameters { key: \"precision_mode\" value: \"FP16\" }\n"
         "        parameters { key: \"max_workspace_size_bytes\" value: \"1073741824\" }\n"
         "      }\n    ]\n  }\n}\n";
  }
  return s;
}

void write_triton_repository(const std::string& directory, const std::string& onnx_bytes,
                             const std::string& config_pbtxt, const std::vector<std::string>& labels,
                             const std::string& model_name) {
  check_plain_file_name(model_name, "model_name");
  const fs::path model = fs::path(directory) / model_name;
  fs::create_directories(model / "1");
  write_file_atomic((model / "1" / "model.onnx").string(), onnx_bytes);
  std::string text;
  for (const auto& l : labels) text += l + "\n";
  write_file_atomic((model / "labels.txt").string(), text);
  write_file_atomic((model / "config.pbtxt").string(), config_pbtxt);
}

}  // namespace convnets
