#include "train/param_groups.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

namespace convnets {

std::vector<ParamGroup> weight_decay_groups(const torch::nn::Module& model, DecayPolicy policy,
                                            double weight_decay, std::vector<std::string>* decayed_names) {
  ParamGroup decayed{{}, weight_decay}, plain{{}, 0.0};
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    const auto& module = item.value();
    bool decay = true;
    if (module->as<torch::nn::BatchNorm2dImpl>()) decay = false;
    if (const auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      const bool depthwise =
          conv->options.groups() > 1 && conv->options.groups() == conv->options.in_channels();
      if (depthwise && policy == DecayPolicy::kAllButBatchNormAndDepthwise) decay = false;
    }
    for (const auto& p : module->named_parameters(/*recurse=*/false)) {
      if (!p.value().requires_grad()) continue;
      (decay ? decayed : plain).params.push_back(p.value());
      if (decay && decayed_names)
        decayed_names->push_back((item.key().empty() ? "" : item.key() + ".") + p.key());
    }
  }
  return {decayed, plain};
}

}  // namespace convnets
