// Exponential moving average of a model's weights and BN statistics (EfficientNet recipe, docs/recipes.md):
// after optimizer update t (1-based), d = min(decay, (1 + t) / (10 + t)) and ema <- ema - (1 - d)(ema - w).
// Decision: the average starts as a copy of the weights (as the PyTorch recipe does), not TF's zeros, which
// only the dynamic decay's first steps hide.
#pragma once
#include <torch/nn/module.h>

#include "util/state_dict.h"

namespace convnets {

class ModelEma {
 public:
  ModelEma(const torch::nn::Module& model, double decay);
  void update(const torch::nn::Module& model, int64_t step);
  // The averaged state (floating-point parameters and buffers; integer buffers are copied as they are).
  const NamedTensors& state() const { return shadow_; }
  double decay_at(int64_t step) const;
  // Restores a saved average (same names and shapes as state()); throws naming the first difference.
  void load_state(const NamedTensors& state);

 private:
  double decay_;
  NamedTensors shadow_;
};

}  // namespace convnets
