#include "models/model_stats.h"

#include <torch/torch.h>

#include "util/mac_counter.h"

namespace convnets {

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
    MacCounter counter;
    x = stage.forward(x);
    StageStats row{stage.name, {}, 0, counter.total()};
    for (int64_t d = 1; d < x.dim(); ++d) row.output_shape.push_back(x.size(d));
    for (const auto& m : stage.modules) row.parameters += count_parameters(*m);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace convnets
