// The model zoo: every architecture with its defaults (resolution, crop, interpolation, mean/std, recipe).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "models/init.h"
#include "models/layers.h"

namespace convnets {

struct DataDefaults {
  int64_t train_size;          // random-resized-crop output
  int64_t eval_size;           // center-crop output
  double crop_pct;             // eval: crop = eval_size / crop_pct of the shorter side, then resize
  std::string interpolation;   // "bilinear" | "bicubic"
  std::array<double, 3> mean;  // RGB, on the 0..1 scale
  std::array<double, 3> std;
};

// The seed recipe a model trains with by default (docs/recipes.md), in PyTorch conventions: configuration
// keys and their values, applied over RunConfig's defaults by default_config() and printed by
// `convnets models -v`. A recipe file or flags override them.
struct RecipeDefaults {
  std::string name;
  std::vector<std::pair<std::string, std::string>> values;
};

// Architecture knobs a caller may override; unset fields keep the entry's defaults.
struct ModelOverrides {
  std::optional<int64_t> num_classes = std::nullopt;
  std::optional<double> dropout = std::nullopt;           // EfficientNet
  std::optional<double> stochastic_depth = std::nullopt;  // EfficientNet
  std::optional<bool> zero_init_residual = std::nullopt;  // ResNet
  std::optional<FanMode> init_mode = std::nullopt;        // ResNet
  std::optional<double> bn_momentum = std::nullopt;
  std::optional<double> bn_eps = std::nullopt;
};

// BatchNorm epsilon and momentum (PyTorch's convention for the momentum).
struct BatchNormDefaults {
  double eps, momentum;
};

enum class ModelFamily { kResNet, kEfficientNet };

struct ModelEntry {
  std::string name;
  ModelFamily family;
  DataDefaults data;
  RecipeDefaults recipe;
  double dropout;  // classifier dropout (0 for ResNets)
  // BatchNorm of the seed recipe (what training from scratch uses), and of torchvision's and timm's models of
  // the same name (what their weights were trained with). torchvision's efficientnet_b5..b7 use 1e-3 / 0.01
  // (their weights come from TF), b0..b4 and every ResNet 1e-5 / 0.1; timm's efficientnet_b* 1e-5 / 0.1.
  BatchNormDefaults recipe_bn, torchvision_bn, timm_bn;
  std::function<ConvNetPtr(const ModelOverrides&)> create;
};

const std::vector<ModelEntry>& model_registry();
std::vector<std::string> model_names();
// Throws std::invalid_argument naming the allowed architectures when `name` is unknown.
const ModelEntry& find_model(const std::string& name);
ConvNetPtr create_model(const std::string& name, const ModelOverrides& overrides = {});
// Throws std::invalid_argument naming the knob when `overrides` asks `entry` for something its family does
// not have (dropout on a ResNet, zero_init_residual on an EfficientNet, ...). create_model checks this too.
void check_model_overrides(const ModelEntry& entry, const ModelOverrides& overrides);

}  // namespace convnets
