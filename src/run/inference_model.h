// What evaluation, prediction and the inference benchmark run forward passes on: the model's inference form
// by default (models/inference_graph.h: BatchNorm folded; on the CPU the fixed oneDNN plan of
// cpu/onednn_plan.h, or with --cpu_inference fused LibTorch's fused oneDNN ops of cpu/fast_inference.h, in
// bfloat16 with --amp where the CPU has it; on CUDA the folded graph with cuDNN),
// or with --inference_form=false the eager training-form model in eval mode; with --int8 the inference form
// quantized as calibrated by `convnets quantize`: on the CPU the oneDNN int8 plan (7-bit weights where the CPU
// has no VNNI), elsewhere (CUDA, --cpu_inference fused) its arithmetic simulated with ATen ops. Built from the model's
// current weights: build it again after the weights change (train_and_eval does, at every evaluation).
#pragma once
#include <array>
#include <memory>
#include <string>

#include "models/inference_graph.h"
#include "models/quantization.h"
#include "models/layers.h"
#include "run/config.h"
#include "run/run_device.h"
#include "util/console.h"

namespace convnets {

class FastInference;
class OneDnnPlan;
struct QuantizedGraph;

// --int8: the model_dir's quantization file (models/quantization.h) and where it was read.
struct Int8Quantization {
  QuantizationFile file;
  std::string path;
};
// <model_dir>/quantization.safetensors, or an error naming `convnets quantize` when there is none.
Int8Quantization load_int8_quantization(const std::string& model_dir);

class InferenceModel {
 public:
  // `precision.inference_form` false: the eager model (run in eval mode, whatever mode it is in); on the
  // CPU, `cpu` picks the kernels and the plan's options. A bfloat16 request (device.autocast) on a CPU
  // without native bfloat16 runs the eager model under autocast, with a notice on `console`.
  InferenceModel(ConvNetPtr model, const std::string& arch, const RunDevice& device,
                 const PrecisionConfig& precision, const CpuConfig& cpu, Console* console = nullptr,
                 const Int8Quantization* int8 = nullptr);
  ~InferenceModel();
  InferenceModel(const InferenceModel&) = delete;
  InferenceModel& operator=(const InferenceModel&) = delete;

  // `x`: normalised float NCHW on the device; float32 logits. No autograd. A batch of no images gives
  // logits [0, classes] without running a kernel, in every form.
  torch::Tensor forward(const torch::Tensor& x);
  // The same from a loader's uint8 [N, H, W, 3] batch on the device, normalised with `mean` / `std` as
  // data/loader.h's normalize_images does: inside the oneDNN plan, or by normalize_images.
  torch::Tensor forward_images(const torch::Tensor& images, const std::array<double, 3>& mean,
                               const std::array<double, 3>& std);
  // "eager", "inference form (oneDNN fused, float32)", ...: printed by the modes and logged.
  const std::string& describe() const { return description_; }

 private:
  torch::Tensor no_images() const;  // the logits of an empty batch

  ConvNetPtr model_;
  RunDevice device_;
  std::unique_ptr<OneDnnPlan> plan_;        // CPU inference form: the oneDNN plan
  std::unique_ptr<FastInference> fused_;    // CPU inference form: LibTorch's fused ops
  std::unique_ptr<InferenceGraph> folded_;  // CUDA inference form (weights on the device)
  std::unique_ptr<QuantizedGraph> int8_;    // --int8 (weights on the device)
  std::string description_;
};

}  // namespace convnets
