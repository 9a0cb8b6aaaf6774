#include "models/efficientnet.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/efficientnet_v2.h"
#include "models/registry.h"

namespace convnets {
namespace {
std::vector<MBConvImpl*> blocks_of(ConvNetImpl& model) {
  std::vector<MBConvImpl*> out;
  for (auto& m : model.modules(false)) {
    if (auto* b = m->as<MBConvImpl>()) out.push_back(b);
  }
  return out;
}
}  // namespace

TEST(EfficientNet, CompoundScalingRounding) {
  EXPECT_EQ(round_filters(32, 1.4), 48);
  EXPECT_EQ(round_filters(1280, 1.4), 1792);
  EXPECT_EQ(round_filters(320, 1.4), 448);
  EXPECT_EQ(round_filters(16, 1.1), 16);
  EXPECT_EQ(round_filters(1280, 2.0), 2560);
  EXPECT_EQ(round_repeats(3, 1.8), 6);
  EXPECT_EQ(round_repeats(1, 3.1), 4);
}

TEST(EfficientNet, B4StructureMatchesTheRecipeTable) {
  auto model = create_model("efficientnet_b4");
  auto params = model->named_parameters();
  EXPECT_EQ(params["features.0.0.weight"].size(0), 48);
  EXPECT_EQ(params["features.8.0.weight"].size(0), 1792);
  EXPECT_EQ(blocks_of(*model).size(), 32u);
  // (in, out, repeats) of the seven stages: (48,24,2) (24,32,4) (32,56,4) (56,112,6) (112,160,6) (160,272,8)
  // (272,448,2)
  EXPECT_EQ(params["features.6.7.block.3.0.weight"].size(0), 272);
  EXPECT_EQ(params["features.7.1.block.3.0.weight"].size(0), 448);
  EXPECT_FALSE(params.contains("features.7.2.block.3.0.weight"));
}

TEST(EfficientNet, DropConnectRisesLinearlyToPointTwo) {
  auto model = create_model("efficientnet_b0");
  const auto blocks = blocks_of(*model);
  ASSERT_EQ(blocks.size(), 16u);
  for (size_t i = 0; i < blocks.size(); ++i) EXPECT_DOUBLE_EQ(blocks[i]->drop_rate(), 0.2 * i / 16.0) << i;
  // Residual blocks per docs/recipes.md: indices 2,4,6,7,9,10,12,13,14.
  std::vector<size_t> residual;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i]->has_residual()) residual.push_back(i);
  }
  EXPECT_EQ(residual, (std::vector<size_t>{2, 4, 6, 7, 9, 10, 12, 13, 14}));
}

// V2's drop rates, stated directly: torchvision's efficientnet_v2_* and timm's tf_efficientnetv2_* both give
// block i of n the rate stochastic_depth * i / n (0.2 by default), counted over every block of every stage
// (V2-S: 2 + 4 + 4 + 6 + 9 + 15 = 40 blocks; V2-B0: 1 + 2 + 2 + 3 + 5 + 8 = 21).
TEST(EfficientNetV2, StochasticDepthRisesLinearlyOverEveryBlock) {
  for (const auto& [arch, count] : {std::pair<std::string, size_t>{"efficientnet_v2_s", 40},
                                    std::pair<std::string, size_t>{"efficientnet_v2_b0", 21}}) {
    auto model = create_model(arch);
    std::vector<double> rates;
    for (auto& m : model->modules(false)) {
      if (auto* b = m->as<FusedMBConvImpl>()) rates.push_back(b->drop_rate());
      if (auto* b = m->as<MBConvImpl>()) rates.push_back(b->drop_rate());
      if (auto* b = m->as<TimmMBConvImpl>()) rates.push_back(b->drop_rate());
    }
    ASSERT_EQ(rates.size(), count) << arch;
    for (size_t i = 0; i < rates.size(); ++i)
      EXPECT_DOUBLE_EQ(rates[i], 0.2 * static_cast<double>(i) / static_cast<double>(count))
          << arch << " " << i;
  }
}

// BatchNorm of the weights V2 reads, stated directly: torchvision's V2 and timm's tf_efficientnetv2_* (B0..B3
// natively, S / M / L through the timm layout) run eps 1e-3 (timm: BN_EPS_TF_DEFAULT for tf_ variants) with
// PyTorch's momentum 0.1; training from scratch takes the TF2 recipe's Keras BatchNormalization (1e-3, 0.99
// -> 0.01).
TEST(EfficientNetV2, BatchNormConventionsOfItsWeights) {
  for (const std::string arch :
       {"efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "efficientnet_v2_b0",
        "efficientnet_v2_b1", "efficientnet_v2_b2", "efficientnet_v2_b3"}) {
    const ModelEntry& e = find_model(arch);
    EXPECT_DOUBLE_EQ(e.native_bn.eps, 1e-3) << arch;
    EXPECT_DOUBLE_EQ(e.native_bn.momentum, 0.1) << arch;
    EXPECT_DOUBLE_EQ(e.recipe_bn.eps, 1e-3) << arch;
    EXPECT_DOUBLE_EQ(e.recipe_bn.momentum, 0.01) << arch;
    for (const ForeignLayout& f : e.foreign_layouts) {
      EXPECT_EQ(f.layout, WeightsLayout::kTimmEfficientNetV2) << arch;
      EXPECT_DOUBLE_EQ(f.bn.eps, 1e-3) << arch;
      EXPECT_DOUBLE_EQ(f.bn.momentum, 0.1) << arch;
    }
  }
}

TEST(EfficientNet, RecipeBatchNormAndInit) {
  auto model = std::dynamic_pointer_cast<EfficientNetImpl>(create_model("efficientnet_b0"));
  for (auto& m : model->modules(false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.01);
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-3);
    }
  }
  auto params = model->named_parameters();
  // Depthwise 3x3 of features.1.0: fan_out = k*k = 9 on the TF layout.
  EXPECT_NEAR(params["features.1.0.block.0.0.weight"].std().item<double>() / std::sqrt(2.0 / 9), 1.0, 0.15);
  // Head conv 1x1 -> 1280: fan_out = 1280.
  EXPECT_NEAR(params["features.8.0.weight"].std().item<double>() / std::sqrt(2.0 / 1280), 1.0, 0.03);
  EXPECT_LE(params["classifier.1.weight"].abs().max().item<double>(), std::sqrt(1.0 / 1000));
  EXPECT_EQ(params["features.2.0.block.2.fc1.bias"].abs().sum().item<double>(), 0.0);
}

TEST(EfficientNet, StochasticDepthIsPerSampleAndUnbiased) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::ones({4000, 2, 1, 1});
  const torch::Tensor y = stochastic_depth(x, 0.2, /*training=*/true);
  // Each sample is all-zero or all 1/0.8; about 20% are dropped; the mean is preserved.
  const torch::Tensor per_sample = y.flatten(1);
  EXPECT_TRUE(torch::equal(per_sample.select(1, 0), per_sample.select(1, 1)));
  EXPECT_NEAR((per_sample.select(1, 0) == 0).to(torch::kFloat).mean().item<double>(), 0.2, 0.02);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.03);
  EXPECT_TRUE(torch::equal(stochastic_depth(x, 0.2, /*training=*/false), x));
}

}  // namespace convnets
