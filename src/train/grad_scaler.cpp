#include "train/grad_scaler.h"

#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>
#include <ATen/ops/_amp_update_scale.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <map>

namespace convnets {

GradScaler::GradScaler(const GradScalerOptions& options)
    : options_(options),
      scale_(torch::full({}, options.init_scale, torch::kFloat)),
      growth_tracker_(torch::zeros({}, torch::kInt)),
      found_inf_(torch::zeros({}, torch::kFloat)) {}

torch::Tensor GradScaler::scale(const torch::Tensor& loss) {
  if (scale_.device() != loss.device()) {
    scale_ = scale_.to(loss.device());
    growth_tracker_ = growth_tracker_.to(loss.device());
    found_inf_ = found_inf_.to(loss.device());
  }
  return loss * scale_.to(loss.scalar_type());
}

bool GradScaler::unscale(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  found_inf_.zero_();
  const torch::Tensor inv_scale = scale_.reciprocal();
  // The fused kernel wants lists of one device and dtype.
  std::map<std::pair<int, int>, std::vector<torch::Tensor>> buckets;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const auto& g = p.grad();
    buckets[{static_cast<int>(g.device().type()) * 1000 + g.device().index(),
             static_cast<int>(g.scalar_type())}]
        .push_back(g);
  }
  for (auto& [key, grads] : buckets) {
    const auto dev = grads.front().device();
    torch::Tensor found = found_inf_.to(dev);
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found, inv_scale.to(dev));
    if (dev != found_inf_.device()) found_inf_.add_(found.to(found_inf_.device()));
  }
  const bool finite = found_inf_.item<float>() == 0.0f;  // one sync per step: the skip decision
  if (!finite) ++skipped_;
  return finite;
}

void GradScaler::update() {
  if (!options_.dynamic) return;
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, options_.growth_factor, options_.backoff_factor,
                         options_.growth_interval);
}

std::vector<torch::Tensor> GradScaler::state() const {
  return {scale_.cpu(), growth_tracker_.cpu(), torch::tensor(skipped_, torch::kInt64)};
}

void GradScaler::load_state(const std::vector<torch::Tensor>& state) {
  TORCH_CHECK(state.size() == 3, "grad scaler state has 3 tensors, got ", state.size());
  scale_.copy_(state[0]);
  growth_tracker_.copy_(state[1]);
  skipped_ = state[2].item<int64_t>();
}

}  // namespace convnets
