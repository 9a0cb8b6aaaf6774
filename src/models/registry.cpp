#include "models/registry.h"

#include <stdexcept>

#include "models/efficientnet.h"
#include "models/resnet.h"

namespace convnets {
namespace {

constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};

ModelEntry resnet_entry(const std::string& name, std::vector<int64_t> blocks, bool bottleneck) {
  ModelEntry e;
  e.name = name;
  e.family = ModelFamily::kResNet;
  e.data = {224, 224, 0.875, "bilinear", kImageNetMean, kImageNetStd};  // shorter side 256 -> center 224
  // ResNet-50 v1.5 TF1 (docs/recipes.md): SGD momentum, LR per 256 images, cosine from step 0.
  e.recipe = {"resnet50_tf1",
              {{"optimizer", "momentum"},
               {"momentum", "0.875"},
               {"lr_init", "0.256"},
               {"lr_reference_batch", "256"},
               {"lr_schedule", "cosine"},
               {"lr_clock", "global"},
               {"lr_warmup_epochs", "8"},
               {"label_smoothing", "0.1"},
               {"weight_decay", "3.0517578125e-05"},
               {"weight_decay_exclude", "bn"},
               {"augmentation", "none"},
               {"crop_sampler", "distorted_bbox"},
               {"num_iter", "90"},
               {"batch_size", "256"},
               {"weight_init", "fan_in"}}};
  e.dropout = 0.0;
  e.recipe_bn = e.torchvision_bn = e.timm_bn = {1e-5, 0.1};
  e.create = [blocks, bottleneck](const ModelOverrides& o) -> ConvNetPtr {
    ResNetOptions options(blocks, bottleneck);
    if (o.num_classes) options.num_classes(*o.num_classes);
    if (o.zero_init_residual) options.zero_init_residual(*o.zero_init_residual);
    if (o.init_mode) options.init_mode(*o.init_mode);
    if (o.bn_momentum) options.bn_momentum(*o.bn_momentum);
    if (o.bn_eps) options.bn_eps(*o.bn_eps);
    return std::make_shared<ResNetImpl>(options);
  };
  return e;
}

ModelEntry efficientnet_entry(int b, double width, double depth, int64_t size, double dropout) {
  ModelEntry e;
  e.name = "efficientnet_b" + std::to_string(b);
  e.family = ModelFamily::kEfficientNet;
  // Eval: center crop S/(S+32) of the shorter side, resize to S (docs/recipes.md); bicubic as in the PyT
  // recipe.
  e.data = {size,      size,          static_cast<double>(size) / static_cast<double>(size + 32),
            "bicubic", kImageNetMean, kImageNetStd};
  // EfficientNet TF2 (docs/recipes.md): RMSprop with epsilon inside the square root, LR per 128 images,
  // cosine after warmup, Keras l2 5e-6 = 1e-5 here, EMA, AutoAugment, 500 epochs. The B4 recipe (which
  // B4..B7 train with) adds mixup 0.2 and a smaller batch for the larger images.
  const bool large = b >= 4;
  e.recipe = {large ? "efficientnet_b4_tf2" : "efficientnet_b0_tf2",
              {{"optimizer", "rmsprop"},
               {"rmsprop_rho", "0.9"},
               {"momentum", "0.9"},
               {"opt_epsilon", "0.001"},
               {"lr_init", "0.005"},
               {"lr_reference_batch", "128"},
               {"lr_schedule", "cosine"},
               {"lr_clock", "after_warmup"},
               {"lr_warmup_epochs", "5"},
               {"label_smoothing", "0.1"},
               {"weight_decay", "1e-05"},
               {"weight_decay_exclude", "bn_and_depthwise"},
               {"ema_decay", "0.9999"},
               {"augmentation", "autoaugment"},
               {"crop_sampler", "distorted_bbox"},
               {"mixup_alpha", large ? "0.2" : "0"},
               {"mix_symmetric_max", "true"},  // the TF2 recipe's mixup: lambda = max(lambda, 1 - lambda)
               {"num_iter", "500"},
               {"batch_size", large ? "160" : "1024"},
               {"weight_init", "fan_out"}}};
  e.dropout = dropout;
  e.recipe_bn = {1e-3, 0.01};  // TF's BatchNormalization(epsilon=1e-3, momentum=0.99)
  e.torchvision_bn = b >= 5 ? BatchNormDefaults{1e-3, 0.01} : BatchNormDefaults{1e-5, 0.1};
  e.timm_bn = {1e-5, 0.1};
  e.create = [width, depth, dropout](const ModelOverrides& o) -> ConvNetPtr {
    EfficientNetOptions options(width, depth, o.dropout.value_or(dropout));
    if (o.num_classes) options.num_classes(*o.num_classes);
    if (o.stochastic_depth) options.stochastic_depth(*o.stochastic_depth);
    if (o.bn_momentum) options.bn_momentum(*o.bn_momentum);
    if (o.bn_eps) options.bn_eps(*o.bn_eps);
    return std::make_shared<EfficientNetImpl>(options);
  };
  return e;
}

std::vector<ModelEntry> build_registry() {
  std::vector<ModelEntry> r;
  r.push_back(resnet_entry("resnet18", {2, 2, 2, 2}, false));
  r.push_back(resnet_entry("resnet34", {3, 4, 6, 3}, false));
  r.push_back(resnet_entry("resnet50", {3, 4, 6, 3}, true));
  r.push_back(resnet_entry("resnet101", {3, 4, 23, 3}, true));
  r.push_back(resnet_entry("resnet152", {3, 8, 36, 3}, true));
  // Compound scaling (width, depth, resolution, dropout) of EfficientNet v1.
  r.push_back(efficientnet_entry(0, 1.0, 1.0, 224, 0.2));
  r.push_back(efficientnet_entry(1, 1.0, 1.1, 240, 0.2));
  r.push_back(efficientnet_entry(2, 1.1, 1.2, 260, 0.3));
  r.push_back(efficientnet_entry(3, 1.2, 1.4, 300, 0.3));
  r.push_back(efficientnet_entry(4, 1.4, 1.8, 380, 0.4));
  r.push_back(efficientnet_entry(5, 1.6, 2.2, 456, 0.4));
  r.push_back(efficientnet_entry(6, 1.8, 2.6, 528, 0.5));
  r.push_back(efficientnet_entry(7, 2.0, 3.1, 600, 0.5));
  return r;
}

}  // namespace

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> registry = build_registry();
  return registry;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : model_registry()) names.push_back(e.name);
  return names;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry()) {
    if (e.name == name) return e;
  }
  std::string allowed;
  for (const auto& n : model_names()) allowed += (allowed.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown architecture '" + name + "'; expected one of: " + allowed);
}

void check_model_overrides(const ModelEntry& entry, const ModelOverrides& o) {
  if (o.num_classes && *o.num_classes < 1)
    throw std::invalid_argument("num_classes must be >= 1, got " + std::to_string(*o.num_classes));
  if (entry.family == ModelFamily::kResNet) {
    if (o.dropout && *o.dropout > 0)
      throw std::invalid_argument("dropout: ResNets have no classifier dropout");
    if (o.stochastic_depth && *o.stochastic_depth > 0)
      throw std::invalid_argument("stochastic_depth: ResNets have no stochastic depth");
  } else {
    if (o.zero_init_residual && *o.zero_init_residual)
      throw std::invalid_argument("zero_init_residual: only ResNets support it");
    if (o.init_mode && *o.init_mode != FanMode::kFanOut)
      throw std::invalid_argument("weight_init: EfficientNet's recipe init is fan_out only");
  }
}

ConvNetPtr create_model(const std::string& name, const ModelOverrides& overrides) {
  const ModelEntry& entry = find_model(name);
  check_model_overrides(entry, overrides);
  return entry.create(overrides);
}

}  // namespace convnets
