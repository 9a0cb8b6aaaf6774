#include "models/registry.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/model_stats.h"

namespace convnets {

TEST(Registry, ListsAllTwentyFiveArchitectures) {
  const std::vector<std::string> expected = {"resnet18",           "resnet34",
                                             "resnet50",           "resnet101",
                                             "resnet152",          "resnext50_32x4d",
                                             "resnext101_32x4d",   "resnext101_32x8d",
                                             "resnext101_64x4d",   "se_resnext101_32x4d",
                                             "efficientnet_b0",    "efficientnet_b1",
                                             "efficientnet_b2",    "efficientnet_b3",
                                             "efficientnet_b4",    "efficientnet_b5",
                                             "efficientnet_b6",    "efficientnet_b7",
                                             "efficientnet_v2_s",  "efficientnet_v2_m",
                                             "efficientnet_v2_l",  "efficientnet_v2_b0",
                                             "efficientnet_v2_b1", "efficientnet_v2_b2",
                                             "efficientnet_v2_b3"};
  EXPECT_EQ(model_names(), expected);
}

TEST(Registry, UnknownNameListsTheAllowedOnes) {
  try {
    create_model("resnet51");
    FAIL();
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet51"), std::string::npos);
    for (const auto& name : model_names()) EXPECT_NE(msg.find(name), std::string::npos) << name;
  }
}

TEST(Registry, EntriesCarryTheirDefaults) {
  EXPECT_EQ(find_model("resnet50").data.eval_size, 224);
  EXPECT_DOUBLE_EQ(find_model("resnet50").data.crop_pct, 0.875);
  EXPECT_EQ(find_model("efficientnet_b4").data.train_size, 380);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_b4").data.crop_pct, 380.0 / 412.0);
  EXPECT_EQ(find_model("efficientnet_b4").data.interpolation, Interpolation::kBicubic);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_b7").dropout, 0.5);
  EXPECT_DOUBLE_EQ(find_model("resnet50").data.mean[0], 0.485);
  EXPECT_EQ(find_model("efficientnet_v2_s").data.eval_size, 384);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_v2_s").data.crop_pct, 384.0 / 416.0);
  EXPECT_EQ(find_model("efficientnet_v2_s").data.crop_mode, CropMode::kCenterCrop);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_v2_l").data.mean[0], 0.5);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_v2_s").native_bn.eps, 1e-3);
  EXPECT_DOUBLE_EQ(find_model("efficientnet_v2_s").native_bn.momentum, 0.1);
}

TEST(Registry, OverridesApplyAndBadOnesAreRejected) {
  auto model = create_model("efficientnet_b0", {.num_classes = 10, .dropout = 0.5});
  EXPECT_EQ(model->named_parameters()["classifier.1.weight"].size(0), 10);
  EXPECT_THROW(create_model("resnet50", {.num_classes = 0}), std::invalid_argument);
  EXPECT_THROW(create_model("resnet50", {.dropout = 0.3}), std::invalid_argument);
  EXPECT_THROW(create_model("efficientnet_b0", {.zero_init_residual = true}), std::invalid_argument);
  EXPECT_THROW(create_model("resnext101_32x4d", {.se_width = 16}), std::invalid_argument);
  EXPECT_THROW(create_model("efficientnet_b0", {.padding = Padding::kSame}), std::invalid_argument);
  EXPECT_THROW(create_model("resnet50", {.padding = Padding::kSame}), std::invalid_argument);
  // What a model is anyway may be asked for: dropout 0 of a ResNet, fan_out and symmetric padding of a B0.
  EXPECT_NO_THROW(create_model("resnet50", {.dropout = 0.0, .stochastic_depth = 0.0}));
  EXPECT_NO_THROW(
      create_model("efficientnet_b0", {.init_mode = FanMode::kFanOut, .padding = Padding::kSymmetric}));
  // One check names the knob and the models that do take it.
  try {
    create_model("resnext101_32x4d", {.se_width = 16});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "se_width: resnext101_32x4d does not take it (the models that do: se_resnext101_32x4d)");
  }
  // Each family's entries name their classifier, the module fine-tuning re-initialises.
  for (const std::string arch : {"resnet18", "efficientnet_b0", "efficientnet_v2_s", "efficientnet_v2_b0"}) {
    const ModelEntry& entry = find_model(arch);
    const auto params = create_model(arch)->named_parameters();
    EXPECT_TRUE(params.contains(entry.classifier + ".weight")) << arch << ": " << entry.classifier;
    EXPECT_TRUE(params.contains(entry.classifier + ".bias")) << arch << ": " << entry.classifier;
  }
}

// The new families' sizes against the reference libraries' counts (docs/models.md): torchvision's num_params
// for V2-S/M/L and the ResNeXts, timm's for V2-B0..B3, ResNeXt101-32x4d and SE-ResNeXt101-32x4d; NVIDIA's
// PyTorch SE-ResNeXt (SE 16 wide in every stage) as an override.
TEST(Registry, ParameterCountsOfTheNewFamilies) {
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"efficientnet_v2_s", 21458488},  {"efficientnet_v2_m", 54139356}, {"efficientnet_v2_l", 118515272},
      {"efficientnet_v2_b0", 7139704},  {"efficientnet_v2_b1", 8141052}, {"efficientnet_v2_b2", 10096086},
      {"efficientnet_v2_b3", 14358406}, {"resnext50_32x4d", 25028904},   {"resnext101_32x8d", 88791336},
      {"resnext101_64x4d", 83455272},   {"resnext101_32x4d", 44177704},  {"se_resnext101_32x4d", 48955416}};
  for (const auto& [name, count] : expected) EXPECT_EQ(count_parameters(*create_model(name)), count) << name;
  EXPECT_EQ(count_parameters(*create_model("se_resnext101_32x4d", {.se_width = 16})), 45251128);
}

// What re-implementations get wrong (docs/models.md): V2's SE width from the block input (S stage 4 block 0:
// in 64, expanded 256, squeeze 16), the expand-ratio-1 fused block's single convolution, head 1280 for every
// V2 (V1's rule would give 2560 for L), S's 6 stages and M / L's 7, B3's stage 1 of 16 channels (V1's
// rounding would make it 24), V2's BatchNorm eps 1e-3 with momentum 0.1.
TEST(Registry, EfficientNetV2Structure) {
  const auto s = create_model("efficientnet_v2_s");
  auto params = s->named_parameters();
  EXPECT_EQ(params["features.4.0.block.2.fc1.weight"].sizes(), (std::vector<int64_t>{16, 256, 1, 1}));
  EXPECT_EQ(params["features.4.1.block.2.fc1.weight"].sizes(), (std::vector<int64_t>{32, 512, 1, 1}));
  EXPECT_EQ(params["features.1.0.block.0.0.weight"].sizes(), (std::vector<int64_t>{24, 24, 3, 3}));
  EXPECT_FALSE(params.contains("features.1.0.block.1.0.weight"));
  EXPECT_EQ(params["features.7.0.weight"].sizes(), (std::vector<int64_t>{1280, 256, 1, 1}));
  EXPECT_FALSE(params.contains("features.8.0.weight"));
  const auto l = create_model("efficientnet_v2_l");
  EXPECT_EQ(l->named_parameters()["features.8.0.weight"].sizes(), (std::vector<int64_t>{1280, 640, 1, 1}));
  const auto b3 = create_model("efficientnet_v2_b3");
  auto b3p = b3->named_parameters();
  EXPECT_EQ(b3p["conv_stem.weight"].size(0), 40);
  EXPECT_EQ(b3p["blocks.0.0.conv.weight"].size(0), 16);
  EXPECT_EQ(b3p["conv_head.weight"].size(0), 1536);
  EXPECT_EQ(b3p["blocks.3.0.se.conv_reduce.weight"].sizes(), (std::vector<int64_t>{14, 224, 1, 1}));
  int64_t norms = 0;
  for (const auto& m : s->modules(false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-3);
      EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.1);
      ++norms;
    }
  }
  EXPECT_GT(norms, 100);
}

// SE-ResNeXt: SE (C / 16, 8-divisible) on the bn3 output of every bottleneck, timm's names; ResNeXt's grouped
// 3x3 of 32 groups x 4 channels per 64 planes.
TEST(Registry, ResNeXtStructure) {
  auto p = create_model("se_resnext101_32x4d")->named_parameters();
  EXPECT_EQ(p["layer1.0.conv2.weight"].sizes(), (std::vector<int64_t>{128, 4, 3, 3}));
  EXPECT_EQ(p["layer1.0.se.fc1.weight"].sizes(), (std::vector<int64_t>{16, 256, 1, 1}));
  EXPECT_EQ(p["layer4.2.se.fc1.weight"].sizes(), (std::vector<int64_t>{128, 2048, 1, 1}));
  EXPECT_TRUE(p.contains("layer4.2.se.fc2.bias"));
  auto fixed = create_model("se_resnext101_32x4d", {.se_width = 16})->named_parameters();
  EXPECT_EQ(fixed["layer4.2.se.fc1.weight"].sizes(), (std::vector<int64_t>{16, 2048, 1, 1}));
  EXPECT_EQ(create_model("resnext101_32x8d")->named_parameters()["layer1.0.conv2.weight"].sizes(),
            (std::vector<int64_t>{256, 8, 3, 3}));
}

}  // namespace convnets
