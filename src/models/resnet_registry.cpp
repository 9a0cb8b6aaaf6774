// The ResNet family's registry entries: ResNet v1.5, ResNeXt and SE-ResNeXt, with the NVIDIA recipes
// (docs/recipes.md) and torchvision's / timm's layout, which are the same names.
#include "models/registry.h"
#include "models/resnet.h"

namespace convnets {
namespace {

constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};

struct ResNetShape {
  std::vector<int64_t> blocks;
  bool bottleneck;
  int64_t groups = 1, width_per_group = 64;
  bool squeeze_excitation = false;
};

// ResNet-50 v1.5 TF1 (docs/recipes.md): SGD momentum, LR 0.256 per 256 images, cosine from step 0, 8 warmup
// epochs, label smoothing 0.1, fan_in init. The ResNeXt101 / SE-ResNeXt101 recipes are the same with weight
// decay 1/16384 (6.103515625e-05) instead of 1/32768.
RecipeDefaults resnet_recipe(const std::string& name, const std::string& weight_decay) {
  return {name,
          {{"optimizer", "momentum"},
           {"momentum", "0.875"},
           {"lr_init", "0.256"},
           {"lr_reference_batch", "256"},
           {"lr_schedule", "cosine"},
           {"lr_clock", "global"},
           {"lr_warmup_epochs", "8"},
           {"label_smoothing", "0.1"},
           {"weight_decay", weight_decay},
           {"weight_decay_exclude", "bn"},
           {"augmentation", "none"},
           {"crop_sampler", "distorted_bbox"},
           {"num_iter", "90"},
           {"batch_size", "256"},
           {"weight_init", "fan_in"}}};
}

ModelEntry resnet_entry(const std::string& name, const ResNetShape& shape, const RecipeDefaults& recipe) {
  ModelEntry e;
  e.name = name;
  // Resize the shorter side to 224 / 0.875 = 256, centre 224 (the seeds' and torchvision's eval).
  e.data = {224, 224, 0.875, CropMode::kCenter, Interpolation::kBilinear, kImageNetMean, kImageNetStd};
  e.recipe = recipe;
  e.dropout = 0.0;
  e.recipe_bn = e.native_bn = {1e-5, 0.1};
  e.native_layout = WeightsLayout::kResNet;
  e.native_origin = WeightsOrigin::kTorchvision;  // timm's ResNets and ResNeXts: the same names and BN
  e.classifier = "fc";
  e.knobs = {ModelKnob::kZeroInitResidual, ModelKnob::kWeightInit};
  if (shape.squeeze_excitation) e.knobs.insert(ModelKnob::kSeWidth);
  e.fixed = {.dropout = 0.0, .stochastic_depth = 0.0, .padding = Padding::kSymmetric};
  e.create = [shape](const ModelOverrides& o) -> ConvNetPtr {
    ResNetOptions options(shape.blocks, shape.bottleneck);
    options.groups(shape.groups)
        .width_per_group(shape.width_per_group)
        .squeeze_excitation(shape.squeeze_excitation);
    if (o.num_classes) options.num_classes(*o.num_classes);
    if (o.zero_init_residual) options.zero_init_residual(*o.zero_init_residual);
    if (o.init_mode) options.init_mode(*o.init_mode);
    if (o.batch_norm) options.batch_norm(*o.batch_norm);
    if (o.se_width) options.se_width(*o.se_width);
    return std::make_shared<ResNetImpl>(options);
  };
  return e;
}

}  // namespace

std::vector<ModelEntry> resnet_entries() {
  const RecipeDefaults rn50 = resnet_recipe("resnet50_tf1", "3.0517578125e-05");
  const RecipeDefaults rnx = resnet_recipe("resnext101_tf1", "6.103515625e-05");
  const std::vector<int64_t> r50{3, 4, 6, 3}, r101{3, 4, 23, 3};
  return {resnet_entry("resnet18", {{2, 2, 2, 2}, false}, rn50),
          resnet_entry("resnet34", {{3, 4, 6, 3}, false}, rn50), resnet_entry("resnet50", {r50, true}, rn50),
          resnet_entry("resnet101", {r101, true}, rn50),
          resnet_entry("resnet152", {{3, 8, 36, 3}, true}, rn50),
          // torchvision's ResNeXts, and the 32x4d that NVIDIA trains (torchvision's class, timm's weights).
          resnet_entry("resnext50_32x4d", {r50, true, 32, 4}, rnx),
          resnet_entry("resnext101_32x4d", {r101, true, 32, 4}, rnx),
          resnet_entry("resnext101_32x8d", {r101, true, 32, 8}, rnx),
          resnet_entry("resnext101_64x4d", {r101, true, 64, 4}, rnx),
          resnet_entry("se_resnext101_32x4d", {r101, true, 32, 4, true}, rnx)};
}

}  // namespace convnets
