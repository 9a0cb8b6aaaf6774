#include "train/ema.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>

namespace convnets {

ModelEma::ModelEma(const torch::nn::Module& model, double decay) : decay_(decay) {
  for (const auto& [name, t] : state_dict(model)) shadow_.emplace_back(name, t.detach().clone());
}

double ModelEma::decay_at(int64_t step) const {
  return std::min(decay_, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void ModelEma::update(const torch::nn::Module& model, int64_t step) {
  torch::NoGradGuard no_grad;
  const double d = decay_at(step);
  const NamedTensors current = state_dict(model);
  TORCH_CHECK(current.size() == shadow_.size(), "EMA: the model's state changed shape");
  for (size_t i = 0; i < current.size(); ++i) {
    auto& ema = shadow_[i].second;
    const auto& w = current[i].second;
    if (ema.is_floating_point()) {
      ema.lerp_(w.to(ema.scalar_type()), 1.0 - d);  // ema - (1 - d)(ema - w)
    } else {
      ema.copy_(w);
    }
  }
}

void ModelEma::load_state(const NamedTensors& state) {
  if (state.size() != shadow_.size())
    throw std::runtime_error("EMA state has " + std::to_string(state.size()) + " tensors, the model " +
                             std::to_string(shadow_.size()));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < state.size(); ++i) {
    if (state[i].first != shadow_[i].first || !state[i].second.sizes().equals(shadow_[i].second.sizes()))
      throw std::runtime_error("EMA state: '" + state[i].first + "' does not match the model's '" +
                               shadow_[i].first + "'");
    shadow_[i].second.copy_(state[i].second);
  }
}

}  // namespace convnets
