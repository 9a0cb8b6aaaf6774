// The model of a run: the architecture with the configuration's overrides on its device, the conventions of
// the weights it runs (BatchNorm, padding, normalisation), the metadata written beside its weights, and
// fine-tuning from other weights. Every setting reaches the model when it is built; nothing is changed on a
// model after it is made.
#pragma once
#include <string>

#include "models/layers.h"
#include "models/registry.h"
#include "run/config.h"
#include "util/console.h"
#include "util/torch_file.h"

namespace convnets {

// BatchNorm eps and momentum of a model, in this order: --bn_eps / --bn_momentum when set; what the weights'
// metadata records (files convnets wrote); for weights written elsewhere, the convention of the library
// whose layout they have (ModelEntry::native_bn, or the foreign layout's); the recipe's when there are no
// weights (training from scratch) or they are ours without metadata.
struct BatchNormConvention {
  BatchNormSettings settings;
  std::string source;            // "flag", "weights metadata", "torchvision's", "timm's", "recipe"
  std::string describe() const;  // "BatchNorm eps 1e-05, momentum 0.1 (recipe)"
};

// Weights as the model will run them: renamed into the model's layout, and the configuration with what
// they imply filled in where it says nothing (BatchNorm convention; a foreign layout's padding and mean /
// std, e.g. timm's tf_ V2 weights: TensorFlow padding, mean = std = 0.5).
struct ResolvedWeights {
  NativeWeights weights;
  RunConfig config;
  BatchNormConvention batch_norm;
};
// `tensors` read from `path`; `ours`: convnets wrote them (metadata, or a run's own files).
ResolvedWeights resolve_weights(const RunConfig& config, const NamedTensors& tensors,
                                const WeightsMetadata& metadata, bool ours, const std::string& path);
// The configuration with no weights (training from scratch, a benchmark): the recipe's BatchNorm.
RunConfig with_recipe_conventions(const RunConfig& config);

// The metadata convnets writes beside every weights file of `config`'s model (bn_eps must be resolved).
WeightsMetadata model_metadata(const ModelConfig& model);
// `config` with the conventions made explicit for training: finetune_from's when set (its layout's), else
// the recipe's. Written to config.yaml, so later modes use the same.
RunConfig with_resolved_batch_norm(const RunConfig& config);

// The architecture with the config's overrides (model_overrides), on `device` (channels_last when asked).
ConvNetPtr build_model(const RunConfig& config, const torch::Device& device);
// Loads init.finetune_from into `model`: only the classifier may differ in shape (a new number of classes
// keeps its fresh initialisation); anything else that does not fit is an error listing the mismatch.
// Reports what was loaded on `console`.
void load_finetune_weights(ConvNetImpl& model, const RunConfig& config, Console& console);
void to_channels_last(torch::nn::Module& module);

}  // namespace convnets
