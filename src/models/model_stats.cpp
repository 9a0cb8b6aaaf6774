#include "models/model_stats.h"

#include <ATen/record_function.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstring>

namespace convnets {
namespace {

// Multiply-accumulates of the convolutions that run on this thread while a MacCount is alive, seen through
// ATen's RecordFunction callbacks: nothing is instrumented outside profiling. (Linear layers are counted
// from their shapes: one image gives one row, in x out MACs.)
thread_local int64_t* active_total = nullptr;

// The weight's share of each output's MACs is read when the op starts (its inputs are alive then); the
// output's size when it ends.
struct MacsPerOutput : at::ObserverContext {
  explicit MacsPerOutput(int64_t n) : per_output(n) {}
  int64_t per_output;
};

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (!active_total) return nullptr;
  if (std::strcmp(fn.name(), "aten::convolution") != 0) return nullptr;
  const auto inputs = fn.inputs();
  if (inputs.size() < 2 || !inputs[1].isTensor()) return nullptr;
  const at::Tensor& weight = inputs[1].toTensor();  // [C_out, C_in/groups, kh, kw]
  return std::make_unique<MacsPerOutput>(weight.size(1) * weight.size(2) * weight.size(3));
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* context) {
  if (!active_total || !context) return;
  const auto& outputs = fn.outputs();
  if (outputs.empty() || !outputs[0].isTensor()) return;
  *active_total += outputs[0].toTensor().numel() * static_cast<MacsPerOutput*>(context)->per_output;
}

class MacCount {
 public:
  MacCount()
      : handle_(at::addThreadLocalCallback(
            at::RecordFunctionCallback(on_start, on_end).needsInputs(true).needsOutputs(true))) {
    active_total = &total_;
  }
  ~MacCount() {
    active_total = nullptr;
    at::removeCallback(handle_);
  }
  MacCount(const MacCount&) = delete;
  MacCount& operator=(const MacCount&) = delete;
  int64_t total() const { return total_; }

 private:
  int64_t total_ = 0;
  at::CallbackHandle handle_;
};

}  // namespace

int64_t count_parameters(const torch::nn::Module& module, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (!trainable_only || p.requires_grad()) n += p.numel();
  }
  return n;
}

std::vector<StageStats> profile_stages(const std::string& arch, int64_t image_size,
                                       const ModelOverrides& overrides) {
  if (image_size < 32)
    throw std::invalid_argument("image size must be >= 32, got " + std::to_string(image_size));
  // LibTorch cannot move modules to the meta device (set_data rejects it), so this is one real CPU forward.
  c10::InferenceMode inference;
  ConvNetPtr model = create_model(arch, overrides);
  model->eval();
  std::vector<StageStats> rows;
  torch::Tensor x = torch::zeros({1, 3, image_size, image_size});
  for (const auto& stage : model->stages()) {
    MacCount count;
    x = stage.forward(x);
    StageStats row{stage.name, {}, 0, count.total()};
    for (int64_t d = 1; d < x.dim(); ++d) row.output_shape.push_back(x.size(d));
    for (const auto& m : stage.modules) {
      row.parameters += count_parameters(*m);
      for (const auto& sub : m->modules()) {
        if (const auto* linear = sub->as<torch::nn::LinearImpl>())
          row.macs += linear->options.in_features() * linear->options.out_features();
      }
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace convnets
