// Which parameters get L2 weight decay, per recipe (docs/recipes.md).
#pragma once
#include <torch/nn/module.h>

#include "train/optimizers.h"

namespace convnets {

enum class DecayPolicy {
  kAllButBatchNorm,              // RN50 TF1: conv kernels, dense kernel and bias
  kAllButBatchNormAndDepthwise,  // EfficientNet TF2: also SE conv biases; not BN, not depthwise kernels
};

// Two groups: [decayed with `weight_decay`, not decayed]. `decayed_names` (optional) receives the names.
std::vector<ParamGroup> weight_decay_groups(const torch::nn::Module& model, DecayPolicy policy,
                                            double weight_decay,
                                            std::vector<std::string>* decayed_names = nullptr);

}  // namespace convnets
