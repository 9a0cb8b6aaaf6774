// EfficientNet V1's registry entries (B0..B7, torchvision's layout, the NVIDIA TF2 recipes) and the timm
// layout its family reads.
#include <cmath>
#include <regex>
#include <set>

#include "models/efficientnet.h"
#include "models/registry.h"

namespace convnets {
namespace {

constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};

// timm EfficientNet -> torchvision names. Stage 0 of timm is a DepthwiseSeparable block (conv_dw, bn1, se,
// conv_pw, bn2); the others are InvertedResidual (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3).
NamedTensors timm_to_torchvision(const NamedTensors& tensors) {
  static const std::regex block_re(R"(^blocks\.(\d+)\.(\d+)\.(.+)$)");
  std::set<std::string> inverted;  // "S.B" of blocks with a conv_pwl
  for (const auto& [name, t] : tensors) {
    std::smatch m;
    if (std::regex_match(name, m, block_re) && m[3].str().rfind("conv_pwl.", 0) == 0)
      inverted.insert(m[1].str() + "." + m[2].str());
  }
  const std::vector<std::pair<std::string, std::string>> separable = {
      {"conv_dw.", "0.0."},          {"bn1.", "0.1."},     {"se.conv_reduce.", "1.fc1."},
      {"se.conv_expand.", "1.fc2."}, {"conv_pw.", "2.0."}, {"bn2.", "2.1."}};
  const std::vector<std::pair<std::string, std::string>> inverted_table = {
      {"conv_pw.", "0.0."},          {"bn1.", "0.1."},
      {"conv_dw.", "1.0."},          {"bn2.", "1.1."},
      {"se.conv_reduce.", "2.fc1."}, {"se.conv_expand.", "2.fc2."},
      {"conv_pwl.", "3.0."},         {"bn3.", "3.1."}};
  NamedTensors out;
  for (const auto& [key, t] : tensors) {
    std::string renamed = key;  // left as is when unknown: reported as unexpected by the loader
    std::smatch m;
    if (std::regex_match(key, m, block_re)) {
      const std::string prefix =
          "features." + std::to_string(std::stoi(m[1]) + 1) + "." + m[2].str() + ".block.";
      const std::string rest = m[3];
      for (const auto& [from, to] :
           inverted.count(m[1].str() + "." + m[2].str()) ? inverted_table : separable) {
        if (rest.rfind(from, 0) == 0) {
          renamed = prefix + to + rest.substr(from.size());
          break;
        }
      }
    } else {
      for (const auto& [from, to] :
           std::vector<std::pair<std::string, std::string>>{{"conv_stem.", "features.0.0."},
                                                            {"bn1.", "features.0.1."},
                                                            {"conv_head.", "features.8.0."},
                                                            {"bn2.", "features.8.1."},
                                                            {"classifier.", "classifier.1."}}) {
        if (key.rfind(from, 0) == 0) {
          renamed = to + key.substr(from.size());
          break;
        }
      }
    }
    out.emplace_back(renamed, t);
  }
  return out;
}

ModelEntry efficientnet_entry(int b, double width, double depth, int64_t size, double dropout) {
  ModelEntry e;
  e.name = "efficientnet_b" + std::to_string(b);
  // Eval: centre crop S / (S + 32) of the shorter side, resize to S (docs/recipes.md); bicubic as in the PyT
  // recipe.
  e.data = {size,
            size,
            static_cast<double>(size) / static_cast<double>(size + 32),
            CropMode::kCenterCrop,
            Interpolation::kBicubic,
            kImageNetMean,
            kImageNetStd};
  // EfficientNet TF2 (docs/recipes.md): RMSprop with epsilon inside the square root, LR per 128 images,
  // cosine after warmup, Keras l2 5e-6 = 1e-5 here, EMA, AutoAugment, 500 epochs. The B4 recipe (which
  // B4..B7 train with) adds mixup 0.2 and a smaller batch for the larger images.
  const bool large = b >= 4;
  e.recipe = {large ? "efficientnet_b4_tf2" : "efficientnet_b0_tf2",
              efficientnet_tf2_recipe(
                  {{"augmentation", "autoaugment"},
                   {"mixup_alpha", large ? "0.2" : "0"},
                   {"mix_symmetric_max", "true"},  // the TF2 recipe's mixup: lambda = max(lambda, 1 - lambda)
                   {"num_iter", "500"},
                   {"batch_size", large ? "160" : "1024"}})};
  e.dropout = dropout;
  e.recipe_bn = {1e-3, 0.01};  // TF's BatchNormalization(epsilon=1e-3, momentum=0.99)
  // torchvision's efficientnet_b5..b7 weights come from TF (1e-3 / 0.01); b0..b4 and timm's: 1e-5 / 0.1.
  e.native_bn = b >= 5 ? BatchNormSettings{1e-3, 0.01} : BatchNormSettings{1e-5, 0.1};
  e.native_layout = WeightsLayout::kTorchvisionEfficientNet;
  e.native_origin = WeightsOrigin::kTorchvision;
  e.foreign_layouts.push_back(
      {WeightsLayout::kTimmEfficientNet, WeightsOrigin::kTimm, timm_to_torchvision, {1e-5, 0.1}, {}});
  e.classifier = "classifier.1";
  e.knobs = {ModelKnob::kDropout, ModelKnob::kStochasticDepth};
  e.fixed = {.zero_init_residual = false, .init_mode = FanMode::kFanOut, .padding = Padding::kSymmetric};
  e.create = [width, depth, dropout](const ModelOverrides& o) -> ConvNetPtr {
    EfficientNetOptions options(width, depth, o.dropout.value_or(dropout));
    if (o.num_classes) options.num_classes(*o.num_classes);
    if (o.stochastic_depth) options.stochastic_depth(*o.stochastic_depth);
    if (o.batch_norm) options.batch_norm(*o.batch_norm);
    return std::make_shared<EfficientNetImpl>(options);
  };
  return e;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> efficientnet_tf2_recipe(
    std::vector<std::pair<std::string, std::string>> own) {
  std::vector<std::pair<std::string, std::string>> values = {
      {"optimizer", "rmsprop"},  {"rmsprop_rho", "0.9"},
      {"momentum", "0.9"},       {"opt_epsilon", "0.001"},
      {"lr_init", "0.005"},      {"lr_reference_batch", "128"},
      {"lr_schedule", "cosine"}, {"lr_clock", "after_warmup"},
      {"lr_warmup_epochs", "5"}, {"label_smoothing", "0.1"},
      {"weight_decay", "1e-05"}, {"weight_decay_exclude", "bn_and_depthwise"},
      {"ema_decay", "0.9999"},   {"crop_sampler", "distorted_bbox"},
      {"weight_init", "fan_out"}};
  values.insert(values.end(), own.begin(), own.end());
  return values;
}

std::vector<ModelEntry> efficientnet_entries() {
  // Compound scaling (width, depth, resolution, dropout) of EfficientNet v1.
  return {efficientnet_entry(0, 1.0, 1.0, 224, 0.2), efficientnet_entry(1, 1.0, 1.1, 240, 0.2),
          efficientnet_entry(2, 1.1, 1.2, 260, 0.3), efficientnet_entry(3, 1.2, 1.4, 300, 0.3),
          efficientnet_entry(4, 1.4, 1.8, 380, 0.4), efficientnet_entry(5, 1.6, 2.2, 456, 0.4),
          efficientnet_entry(6, 1.8, 2.6, 528, 0.5), efficientnet_entry(7, 2.0, 3.1, 600, 0.5)};
}

}  // namespace convnets
