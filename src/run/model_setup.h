// The model of a run: the architecture with the configuration's overrides on its device, its BatchNorm
// convention, the metadata written beside its weights, and fine-tuning from other weights.
#pragma once
#include <string>

#include "models/layers.h"
#include "run/config.h"
#include "util/console.h"
#include "util/torch_file.h"

namespace convnets {

// BatchNorm eps and momentum of a model, in this order: --bn_eps / --bn_momentum when set; what the weights'
// metadata records (files convnets wrote); for weights written elsewhere, the convention of the library
// whose layout they have (torchvision's per architecture, timm's; see ModelEntry); the recipe's when there
// are no weights (training from scratch).
enum class WeightsOrigin { kNone, kConvnets, kTorchvision, kTimm };
// Who wrote a state dict: convnets when it carries our metadata, else timm or torchvision by its key names.
WeightsOrigin weights_origin(const NamedTensors& tensors, const WeightsMetadata& metadata);
struct BatchNormConvention {
  double eps = 1e-5, momentum = 0.1;
  std::string source;            // "flag", "weights metadata", "torchvision's", "timm's", "recipe"
  std::string describe() const;  // "BatchNorm eps 1e-05, momentum 0.1 (recipe)"
};
BatchNormConvention resolve_batch_norm(const ModelConfig& model, WeightsOrigin origin,
                                       const WeightsMetadata& metadata = {});
void apply_batch_norm(torch::nn::Module& model, const BatchNormConvention& bn);
// The metadata convnets writes beside every weights file of `config`'s model (bn_eps must be resolved).
WeightsMetadata model_metadata(const ModelConfig& model);
// `config` with bn_eps / bn_momentum made explicit for training: from finetune_from's weights when set (a
// foreign file: 1e-5 / 0.1), else the recipe's. Written to config.yaml, so later modes use the same.
RunConfig with_resolved_batch_norm(const RunConfig& config);

// The architecture with the config's overrides, on `device` (channels_last when asked).
ConvNetPtr build_model(const RunConfig& config, const torch::Device& device);
// Loads init.finetune_from into `model`: only the classifier may differ in shape (a new number of classes
// keeps its fresh initialisation); anything else that does not fit is an error listing the mismatch.
// Reports what was loaded on `console`.
void load_finetune_weights(ConvNetImpl& model, const RunConfig& config, Console& console);
void to_channels_last(torch::nn::Module& module);

}  // namespace convnets
