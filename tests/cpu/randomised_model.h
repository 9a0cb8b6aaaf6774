// A model for the oneDNN plan's tests: BatchNorm statistics and biases away from the identity (random, from
// `seed`), so that folding, every bias and every zero point shows.
#pragma once
#include <torch/types.h>

#include <string>

#include "models/registry.h"

namespace convnets::testing {

inline ConvNetPtr randomised_model(const std::string& arch, uint64_t seed) {
  torch::manual_seed(seed);
  ConvNetPtr model = create_model(arch);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().normal_(0, 0.1);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
  for (auto& item : model->named_parameters())
    if (item.value().dim() == 1 && item.key().find("bias") != std::string::npos) item.value().normal_(0, 0.1);
  model->eval();
  return model;
}

}  // namespace convnets::testing
