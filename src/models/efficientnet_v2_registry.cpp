// EfficientNet V2's registry entries: S / M / L in torchvision's layout (timm's tf_efficientnetv2_{s,m,l}
// weights read too: renamed, with TensorFlow's padding and mean = std = 0.5), B0..B3 in timm's layout with
// TensorFlow's padding (timm's tf_efficientnetv2_b*). Recipe: NVIDIA's TF2 EfficientNet V2-S
// (docs/recipes.md).
#include <regex>

#include "models/efficientnet_v2.h"
#include "models/registry.h"

namespace convnets {
namespace {

constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};
constexpr std::array<double, 3> kHalf{0.5, 0.5, 0.5};

// timm V2 -> torchvision names (S: stages at features.1..6, head at features.7; M / L: features.1..7, head at
// features.8). Each block's kind decides what bn1 / bn2 are: ConvBnAct (conv, bn1), EdgeResidual (conv_exp,
// bn1, conv_pwl, bn2), InvertedResidual (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3).
NamedTensors timm_v2_to_torchvision(const NamedTensors& tensors) {
  static const std::regex block_re(R"(^blocks\.(\d+)\.(\d+)\.(.+)$)");
  std::map<std::string, std::string> kind;  // "S.B" -> conv | conv_exp | conv_pw
  int64_t stages = 0;
  for (const auto& [name, t] : tensors) {
    std::smatch m;
    if (!std::regex_match(name, m, block_re)) continue;
    stages = std::max<int64_t>(stages, std::stoll(m[1]) + 1);
    const std::string rest = m[3];
    for (const char* k : {"conv_exp.", "conv_pw.", "conv."})
      if (rest.rfind(k, 0) == 0) kind[m[1].str() + "." + m[2].str()] = k;
  }
  using Table = std::vector<std::pair<std::string, std::string>>;
  const Table conv = {{"conv.", "0.0."}, {"bn1.", "0.1."}};
  const Table edge = {{"conv_exp.", "0.0."}, {"bn1.", "0.1."}, {"conv_pwl.", "1.0."}, {"bn2.", "1.1."}};
  const Table inverted = {{"conv_pw.", "0.0."},          {"bn1.", "0.1."},
                          {"conv_dw.", "1.0."},          {"bn2.", "1.1."},
                          {"se.conv_reduce.", "2.fc1."}, {"se.conv_expand.", "2.fc2."},
                          {"conv_pwl.", "3.0."},         {"bn3.", "3.1."}};
  const std::string head = "features." + std::to_string(stages + 1) + ".";
  NamedTensors out;
  for (const auto& [key, t] : tensors) {
    std::string renamed = key;  // left as is when unknown: reported as unexpected by the loader
    std::smatch m;
    if (std::regex_match(key, m, block_re)) {
      const std::string k = kind[m[1].str() + "." + m[2].str()];
      const Table& table = k == "conv." ? conv : k == "conv_exp." ? edge : inverted;
      const std::string prefix =
          "features." + std::to_string(std::stoi(m[1]) + 1) + "." + m[2].str() + ".block.";
      for (const auto& [from, to] : table) {
        if (m[3].str().rfind(from, 0) == 0) {
          renamed = prefix + to + m[3].str().substr(from.size());
          break;
        }
      }
    } else {
      for (const auto& [from, to] : Table{{"conv_stem.", "features.0.0."},
                                          {"bn1.", "features.0.1."},
                                          {"conv_head.", head + "0."},
                                          {"bn2.", head + "1."},
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

// NVIDIA's TF2 EfficientNet V2-S recipe (docs/recipes.md): the B0 recipe's RMSprop, schedule and
// regularisation, RandAugment N=2, 350 epochs in 4 progressive stages from 128 px.
RecipeDefaults v2_recipe() {
  return {"efficientnet_v2_s_tf2", efficientnet_tf2_recipe({{"augmentation", "randaugment"},
                                                            {"randaug_layers", "2"},
                                                            {"randaug_magnitude", "15"},
                                                            {"n_stages", "4"},
                                                            {"base_image_size", "128"},
                                                            {"base_randaug_magnitude", "5"},
                                                            {"num_iter", "350"},
                                                            {"batch_size", "460"}})};
}

ModelEntry v2_entry(const std::string& name, std::vector<V2StageConfig> stages, int64_t head, double dropout,
                    DataDefaults data, V2Layout layout) {
  ModelEntry e;
  e.name = name;
  e.data = data;
  e.recipe = v2_recipe();
  e.dropout = dropout;
  e.recipe_bn = {1e-3, 0.01};  // the TF2 recipe's Keras BatchNormalization(epsilon=1e-3, momentum=0.99)
  e.native_bn = {1e-3, 0.1};   // torchvision's and timm's V2: eps 1e-3, PyTorch's default momentum
  const bool tv = layout == V2Layout::kTorchvision;
  e.native_layout = tv ? WeightsLayout::kTorchvisionEfficientNet : WeightsLayout::kTimmEfficientNetV2;
  e.native_origin = tv ? WeightsOrigin::kTorchvision : WeightsOrigin::kTimm;
  if (tv) {
    e.foreign_layouts.push_back({WeightsLayout::kTimmEfficientNetV2,
                                 WeightsOrigin::kTimm,
                                 timm_v2_to_torchvision,
                                 {1e-3, 0.1},
                                 {.padding = Padding::kSame},
                                 kHalf,
                                 kHalf});
  }
  e.classifier = tv ? "classifier.1" : "classifier";
  e.knobs = {ModelKnob::kDropout, ModelKnob::kStochasticDepth, ModelKnob::kPadding};
  e.fixed = {.zero_init_residual = false, .init_mode = FanMode::kFanOut};
  const Padding padding = tv ? Padding::kSymmetric : Padding::kSame;  // timm's tf_ models pad as TensorFlow
  e.create = [stages, head, dropout, layout, padding](const ModelOverrides& o) -> ConvNetPtr {
    EfficientNetV2Options options(stages, head, o.dropout.value_or(dropout));
    options.layout(layout).padding(o.padding.value_or(padding));
    if (o.num_classes) options.num_classes(*o.num_classes);
    if (o.stochastic_depth) options.stochastic_depth(*o.stochastic_depth);
    if (o.batch_norm) options.batch_norm(*o.batch_norm);
    return std::make_shared<EfficientNetV2Impl>(options);
  };
  return e;
}

}  // namespace

std::vector<ModelEntry> efficientnet_v2_entries() {
  std::vector<ModelEntry> r;
  // S: the NVIDIA recipe's sizes (train 300, eval 384 with crop 384 / 416 of the shorter side, then resize);
  // M / L: torchvision's eval (480, resize and centre crop 480); L's weights (torchvision's, ported from the
  // official ones, and timm's) expect mean = std = 0.5 and bicubic.
  r.push_back(v2_entry(
      "efficientnet_v2_s", efficientnet_v2_stages('s'), 1280, 0.2,
      {300, 384, 384.0 / 416.0, CropMode::kCenterCrop, Interpolation::kBilinear, kImageNetMean, kImageNetStd},
      V2Layout::kTorchvision));
  r.push_back(
      v2_entry("efficientnet_v2_m", efficientnet_v2_stages('m'), 1280, 0.3,
               {384, 480, 1.0, CropMode::kCenter, Interpolation::kBilinear, kImageNetMean, kImageNetStd},
               V2Layout::kTorchvision));
  r.push_back(v2_entry("efficientnet_v2_l", efficientnet_v2_stages('l'), 1280, 0.4,
                       {384, 480, 1.0, CropMode::kCenter, Interpolation::kBicubic, kHalf, kHalf},
                       V2Layout::kTorchvision));
  // B0..B3: timm's tf_efficientnetv2_b* (ImageNet mean / std, bicubic, timm's crop_pct).
  const struct {
    int b;
    double width, depth, dropout, crop_pct;
    int64_t size;
  } base[] = {{0, 1.0, 1.0, 0.2, 0.875, 224},
              {1, 1.0, 1.1, 0.2, 0.882, 240},
              {2, 1.1, 1.2, 0.3, 0.890, 260},
              {3, 1.2, 1.4, 0.3, 0.904, 300}};
  for (const auto& v : base) {
    int64_t stem = 0, head = 0;
    std::vector<V2StageConfig> stages = scale_v2_base(v.width, v.depth, &stem, &head);
    r.push_back(v2_entry(
        "efficientnet_v2_b" + std::to_string(v.b), stages, head, v.dropout,
        {v.size, v.size, v.crop_pct, CropMode::kCenter, Interpolation::kBicubic, kImageNetMean, kImageNetStd},
        V2Layout::kTimm));
  }
  return r;
}

}  // namespace convnets
