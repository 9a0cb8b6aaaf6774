#include "models/registry.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/model_stats.h"

namespace convnets {

TEST(Registry, ListsAllThirteenArchitectures) {
  const std::vector<std::string> expected = {
      "resnet18",        "resnet34",        "resnet50",        "resnet101",       "resnet152",
      "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
      "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"};
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
  EXPECT_EQ(find_model("efficientnet_b4").data.interpolation, "bicubic");
  EXPECT_DOUBLE_EQ(find_model("efficientnet_b7").dropout, 0.5);
  EXPECT_DOUBLE_EQ(find_model("resnet50").data.mean[0], 0.485);
}

TEST(Registry, OverridesApplyAndBadOnesAreRejected) {
  auto model = create_model("efficientnet_b0", {.num_classes = 10, .dropout = 0.5});
  EXPECT_EQ(model->named_parameters()["classifier.1.weight"].size(0), 10);
  EXPECT_THROW(create_model("resnet50", {.num_classes = 0}), std::invalid_argument);
  EXPECT_THROW(create_model("resnet50", {.dropout = 0.3}), std::invalid_argument);
  EXPECT_THROW(create_model("efficientnet_b0", {.zero_init_residual = true}), std::invalid_argument);
  EXPECT_THROW(create_model("efficientnet_b0", {.padding = Padding::kSame}), std::invalid_argument);
  EXPECT_THROW(create_model("resnet50", {.padding = Padding::kSame}), std::invalid_argument);
}

}  // namespace convnets
