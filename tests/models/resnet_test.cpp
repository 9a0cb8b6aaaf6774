#include "models/resnet.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/registry.h"

namespace convnets {

TEST(ResNet, StrideSitsOnTheThreeByThreeConv) {
  auto model = std::dynamic_pointer_cast<ResNetImpl>(create_model("resnet50"));
  ASSERT_TRUE(model);
  auto first = model->layers[1]->ptr(0)->as<BottleneckImpl>();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->conv1->options.stride()->at(0), 1);
  EXPECT_EQ(first->conv2->options.stride()->at(0), 2);
  EXPECT_EQ(first->down_conv->options.stride()->at(0), 2);
}

TEST(ResNet, ForwardShapesAllDepths) {
  torch::NoGradGuard no_grad;
  for (const char* arch : {"resnet18", "resnet34", "resnet50"}) {
    auto model = create_model(arch, {.num_classes = 7});
    model->eval();
    EXPECT_EQ(model->forward(torch::randn({2, 3, 64, 64})).sizes(), (std::vector<int64_t>{2, 7})) << arch;
  }
}

TEST(ResNet, ZeroInitResidualZeroesTheLastGammaOfEachBlock) {
  auto plain = create_model("resnet50");
  auto zeroed = create_model("resnet50", {.zero_init_residual = true});
  auto params = zeroed->named_parameters();
  EXPECT_EQ(params["layer1.0.bn3.weight"].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(params["layer4.2.bn3.weight"].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(params["layer1.0.bn2.weight"].min().item<double>(), 1.0);
  EXPECT_EQ(params["layer1.0.downsample.1.weight"].min().item<double>(), 1.0);
  EXPECT_EQ(plain->named_parameters()["layer1.0.bn3.weight"].min().item<double>(), 1.0);
  auto basic = create_model("resnet18", {.zero_init_residual = true});
  EXPECT_EQ(basic->named_parameters()["layer2.1.bn2.weight"].abs().sum().item<double>(), 0.0);
}

TEST(ResNet, RecipeInitAndBatchNormSettings) {
  auto model = std::dynamic_pointer_cast<ResNetImpl>(create_model("resnet50"));
  auto params = model->named_parameters();
  // layer3.0.conv1 is a 1x1 conv 512 -> 256: fan_in 512 (the scripts' --weight_init=fan_in), fan_out 256.
  EXPECT_NEAR(params["layer3.0.conv1.weight"].std().item<double>() / std::sqrt(2.0 / 512), 1.0, 0.03);
  auto fan_out = create_model("resnet50", {.init_mode = FanMode::kFanOut});
  EXPECT_NEAR(
      fan_out->named_parameters()["layer3.0.conv1.weight"].std().item<double>() / std::sqrt(2.0 / 256), 1.0,
      0.03);
  EXPECT_EQ(params["fc.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(model->bn1->options.momentum().value(), 0.1);
  EXPECT_DOUBLE_EQ(model->bn1->options.eps(), 1e-5);
}

}  // namespace convnets
