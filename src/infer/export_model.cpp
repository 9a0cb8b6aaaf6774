#include "infer/export_model.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "infer/imagenet_classes.h"
#include "infer/weights_for_inference.h"
#include "models/inference_graph.h"
#include "models/quantization.h"
#include "models/registry.h"
#include "run/data_setup.h"
#include "run/inference_model.h"
#include "util/file_io.h"
#include "util/sha256.h"

#ifndef CONVNETS_VERSION
#define CONVNETS_VERSION "unknown"
#endif

namespace convnets {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string triple(const std::array<double, 3>& v) {
  return number(v[0]) + "," + number(v[1]) + "," + number(v[2]);
}

}  // namespace

ExportResult run_export(const RunConfig& given, const RunContext& context) {
  Console& console = *context.console;
  const ExportConfig& options = given.exporting;
  if (options.onnx_output.empty() && options.triton_repository.empty())
    throw std::invalid_argument("export needs --onnx_output FILE.onnx, --triton_repository DIR, or both");
  RunConfig config = given;
  if (options.export_image_size) config.eval_input.eval_image_size = options.export_image_size;
  // Export reads weights on the CPU in float32; the file's own precision is export_fp16.
  RunDevice cpu;
  const LoadedWeights w = load_for_inference(config, cpu, /*allow_random=*/false, console);
  config = w.config;  // with what the weights imply (a foreign layout's mean / std)
  const ResolvedData data = resolve_data(config);
  const bool ema = w.ema_model != nullptr;
  InferenceGraph graph = inference_graph(ema ? *w.ema_model : *w.model, config.model.arch);
  // --int8: QDQ with the model_dir's calibration of these weights, 8-bit weights (the runtimes' own kernels
  // decide how they multiply them).
  std::optional<QuantizedGraph> int8;
  std::string int8_source;
  if (given.int8.int8) {
    if (options.export_fp16)
      throw std::invalid_argument("export: --int8 and --export_fp16 exclude each other");
    const Int8Quantization file = load_int8_quantization(config.output.model_dir);
    const Int8Calibration& calibration = calibration_for(file.file, graph, file.path);
    int8 = quantize_graph(std::move(graph), calibration, file.path);
    graph = int8->graph;
    int8_source = file.path + " (" + calibration_method_name(file.file.method) + ", " +
                  std::to_string(file.file.images) + " images)";
  }

  std::vector<std::string> names = class_names_or_imagenet(config);
  if (names.empty()) {
    for (int64_t c = 0; c < config.model.num_classes; ++c) names.push_back(std::to_string(c));
  }
  const EvalTransformOptions eval = eval_transform_options(config);
  const double crop_fraction = eval.crop == EvalCrop::kResizeShorterThenCenter
                                   ? static_cast<double>(eval.size) / static_cast<double>(eval.resize_shorter)
                               : eval.crop == EvalCrop::kSquash ? 1.0
                                                                : eval.crop_fraction;
  const char* crop_rule = eval.crop == EvalCrop::kResizeShorterThenCenter
                              ? "resize the shorter side to image_size / crop_fraction, centre crop"
                          : eval.crop == EvalCrop::kSquash
                              ? "resize the whole image to image_size x image_size"
                              : "centre crop crop_fraction of the shorter side, resize to image_size";
  OnnxExportOptions o;
  o.image_size = data.eval_size;
  o.probabilities = options.export_probabilities;
  o.topk = options.export_topk;
  o.fp16 = options.export_fp16;
  o.producer_version = CONVNETS_VERSION;
  o.int8 = int8 ? &*int8 : nullptr;
  o.metadata = {{"convnets.arch", config.model.arch},
                {"convnets.num_classes", std::to_string(config.model.num_classes)},
                {"convnets.image_size", std::to_string(data.eval_size)},
                {"convnets.mean", triple(data.mean)},
                {"convnets.std", triple(data.std)},
                {"convnets.input", "float32 NCHW RGB, (pixel / 255 - mean) / std"},
                {"convnets.interpolation", interpolation_name(data.interpolation)},
                {"convnets.crop_fraction", number(crop_fraction)},
                {"convnets.eval_crop", crop_rule},
                {"convnets.class_names",
                 nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
                {"convnets.weights", w.source},
                {"convnets.weights_sha256", sha256_hex(read_file(w.source))},
                {"convnets.exported_weights", ema ? "ema" : "raw"},
                {"convnets.precision", int8                  ? "int8 (QDQ)"
                                       : options.export_fp16 ? "float16"
                                                             : "float32"},
                {"convnets.batch_norm", w.batch_norm.describe() + ", folded into the convolutions"},
                {"convnets.version", CONVNETS_VERSION}};
  if (int8) o.metadata.emplace_back("convnets.int8_calibration", int8_source);
  const std::string bytes = onnx_model_bytes(graph, o);

  ExportResult result;
  result.weights = ema ? "ema" : "raw";
  result.source = w.source;
  result.bytes = static_cast<int64_t>(bytes.size());
  if (!options.onnx_output.empty()) {
    write_file_atomic(options.onnx_output, bytes);  // no partial file on any error
    result.onnx_path = options.onnx_output;
  }
  if (!options.triton_repository.empty()) {
    TritonOptions t;
    t.model_name = options.triton_model_name.empty() ? config.model.arch : options.triton_model_name;
    t.max_batch_size = options.triton_max_batch_size;
    t.instance_kind = options.triton_instance_kind;
    t.instance_count = options.triton_instances;
    t.tensorrt_fp16 = options.triton_tensorrt_fp16;
    t.max_queue_delay_microseconds = options.triton_max_queue_delay_us;
    write_triton_repository(options.triton_repository, bytes,
                            triton_config_pbtxt(onnx_input(o), onnx_outputs(graph, o), t), names,
                            t.model_name);
    result.repository_path = options.triton_repository + "/" + t.model_name;
  }
  console.info("exported " + config.model.arch + " (" + result.weights + " weights of " + w.source + ") at " +
               std::to_string(data.eval_size) + "x" + std::to_string(data.eval_size) + ", " +
               (int8                  ? "int8 (QDQ)"
                : options.export_fp16 ? "float16"
                                      : "float32") +
               ", " + std::to_string(graph.ops.size()) + " layers, BatchNorm folded, " +
               std::to_string(result.bytes) + " bytes" +
               (result.onnx_path.empty() ? "" : " -> " + result.onnx_path) +
               (result.repository_path.empty() ? "" : "; Triton repository " + result.repository_path));
  return result;
}

}  // namespace convnets
