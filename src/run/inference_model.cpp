#include "run/inference_model.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>

#include "cpu/fast_inference.h"
#include "cpu/onednn_plan.h"
#include "data/loader.h"
#include "models/qat.h"
#include "run/autocast.h"

namespace convnets {

InferenceModel::InferenceModel(ConvNetPtr model, const std::string& arch, const RunDevice& device,
                               const PrecisionConfig& precision, const CpuConfig& cpu, Console* console,
                               const Int8Quantization* int8)
    : model_(std::move(model)), device_(device) {
  // A model in quantization-aware training is evaluated as its int8 form at QAT's ranges: what `eval --int8`
  // will run once its weights are saved (docs/int8.md, "Quantization-aware training").
  std::optional<Int8Quantization> qat;
  if (!int8 && model_->qat()) {
    qat.emplace();
    qat->path = "quantization-aware training";
    qat->file.arch = arch;
    qat->file.num_classes = model_->num_classes();
    qat->file.sets = {qat_calibration(inference_graph(*model_, arch), model_->qat()->amax(), "QAT")};
    int8 = &*qat;
  }
  if (int8) {
    if (device.autocast && console && !qat)
      console->notice("--int8 runs the int8 arithmetic: --amp does not apply to it");
    InferenceGraph graph = inference_graph(*model_, arch);
    const Int8Calibration& calibration = calibration_for(int8->file, graph, int8->path);
    if (!device.device.is_cuda() && cpu.cpu_inference == CpuInferenceKernels::kPlan) {
      const int levels = onednn_int8_weight_levels();
      plan_ = std::make_unique<OneDnnPlan>(quantize_graph(std::move(graph), calibration, int8->path, levels),
                                           cpu.plan_options());
      description_ = "int8 (" + calibration.weights + "'s calibration; oneDNN int8 plan, " +
                     (levels == 127 ? "8" : "7") + "-bit weights on " + onednn_cpu_isa() + ")";
      return;
    }
    int8_ = std::make_unique<QuantizedGraph>(quantize_graph(std::move(graph), calibration, int8->path));
    for (auto& op : int8_->graph.ops) {
      if (op.weight.defined()) op.weight = op.weight.to(device.device);
      if (op.bias.defined()) op.bias = op.bias.to(device.device);
    }
    description_ =
        "int8 (" + calibration.weights + "'s calibration; int8 arithmetic simulated in float32 with ATen)";
    return;
  }
  description_ = "eager model";
  if (!precision.inference_form) {
    if (device.autocast)
      description_ += *device.autocast == torch::kBFloat16 ? ", autocast bf16" : ", autocast fp16";
    return;
  }
  if (device.device.is_cuda()) {
    folded_ = std::make_unique<InferenceGraph>(inference_graph(*model_, arch));
    for (auto& op : folded_->ops) {
      if (op.weight.defined()) op.weight = op.weight.to(device.device);
      if (op.bias.defined()) op.bias = op.bias.to(device.device);
    }
    description_ = "inference form (BatchNorm folded, cuDNN)";
    if (device.autocast)
      description_ += *device.autocast == torch::kBFloat16 ? ", autocast bf16" : ", autocast fp16";
    return;
  }
  const bool bf16 = device.autocast && *device.autocast == torch::kBFloat16;
  if (cpu.cpu_inference == CpuInferenceKernels::kPlan) {
    if (bf16 && !onednn_plan_bf16_supported()) {
      if (console)
        console->notice(
            "this CPU has no native bfloat16 (AVX512-BF16 / AMX): the bf16 run uses the eager model "
            "under autocast");
      description_ += ", autocast bf16";
      return;
    }
    plan_ = std::make_unique<OneDnnPlan>(inference_graph(*model_, arch),
                                         bf16 ? torch::kBFloat16 : torch::kFloat, cpu.plan_options());
    description_ = std::string("inference form (BatchNorm folded, oneDNN plan, ") +
                   (bf16 ? "bfloat16" : "float32") + ")";
    return;
  }
  if (!fast_inference_available() || (bf16 && !fast_inference_bf16_supported())) {
    if (console)
      console->notice(
          !fast_inference_available()
              ? "this build has no oneDNN fusion kernels: running the eager model"
              : "this CPU has no native bfloat16 (AVX512-BF16 / AMX): the bf16 run uses the eager "
                "model under autocast");
    if (device.autocast) description_ += ", autocast bf16";
    return;
  }
  fused_ = std::make_unique<FastInference>(inference_graph(*model_, arch),
                                           bf16 ? torch::kBFloat16 : torch::kFloat);
  description_ = std::string("inference form (BatchNorm folded, fused oneDNN kernels, ") +
                 (bf16 ? "bfloat16" : "float32") + ")";
}

InferenceModel::~InferenceModel() = default;

Int8Quantization load_int8_quantization(const std::string& model_dir) {
  if (model_dir.empty())
    throw std::invalid_argument("--int8 needs --model_dir: the quantization `convnets quantize` wrote there");
  const std::string path = (std::filesystem::path(model_dir) / kQuantizationFileName).string();
  if (!std::filesystem::exists(path))
    throw std::invalid_argument("--int8: no int8 quantization in '" + model_dir + "' (" +
                                kQuantizationFileName + "): run `convnets quantize --model_dir " + model_dir +
                                " --data_dir <images>` first");
  return {load_quantization(path), path};
}

torch::Tensor InferenceModel::no_images() const {
  return torch::empty({0, model_->num_classes()},
                      torch::TensorOptions().dtype(torch::kFloat).device(device_.device));
}

torch::Tensor InferenceModel::forward_images(const torch::Tensor& images, const std::array<double, 3>& mean,
                                             const std::array<double, 3>& std) {
  if (images.dim() > 0 && images.size(0) == 0) return no_images();
  if (plan_) return plan_->forward_images(images, mean, std);
  return forward(normalize_images(images, mean, std));
}

torch::Tensor InferenceModel::forward(const torch::Tensor& x) {
  if (x.dim() > 0 && x.size(0) == 0) return no_images();
  if (plan_) return plan_->forward(x);
  if (fused_) return fused_->forward(x);
  c10::InferenceMode inference;
  if (int8_) return run_quantized_graph(*int8_, x.to(torch::kFloat));
  AutocastGuard autocast(device_.device.type(), device_.autocast);
  if (folded_) return run_inference_graph(*folded_, x).to(torch::kFloat);
  // The eager model in eval mode for this pass; a model that is training (train_and_eval) goes back to it.
  const bool training = model_->is_training();
  if (training) model_->eval();
  torch::Tensor logits = model_->forward(x).to(torch::kFloat);
  if (training) model_->train();
  return logits;
}

}  // namespace convnets
