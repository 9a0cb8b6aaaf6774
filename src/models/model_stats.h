// Size and cost of a model: parameter counts and multiply-accumulates, per stage.
#pragma once
#include "models/layers.h"
#include "models/registry.h"

namespace convnets {

int64_t count_parameters(const torch::nn::Module& module, bool trainable_only = true);

struct StageStats {
  std::string name;
  std::vector<int64_t> output_shape;  // [C, H, W] or [classes]
  int64_t parameters;
  int64_t macs;  // conv + linear multiply-accumulates for one image
};

// Builds `arch`, runs one image of `image_size` x `image_size` through its stages in eval mode and reports
// per-stage output shapes, parameters and MACs.
std::vector<StageStats> profile_stages(const std::string& arch, int64_t image_size,
                                       const ModelOverrides& overrides = {});

}  // namespace convnets
