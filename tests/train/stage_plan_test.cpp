#include "train/stage_plan.h"

#include <gtest/gtest.h>

#include <cmath>

#include "data/augment.h"
#include "models/registry.h"

namespace convnets {
namespace {

TEST(ProgressiveStages, FollowTheEfficientNetV2Rule) {
  RunConfig c = default_config("efficientnet_b0");
  c.progressive.n_stages = 4;
  c.progressive.base_image_size = 128;
  c.train_input.randaug_magnitude = 15;
  c.progressive.base_randaug_magnitude = 5;
  c.mixing.mixup_alpha = 0.3;
  c.progressive.base_mixup = 0.0;
  // 10 epochs, 4 stages: 2 epochs each, the last stage runs to the end.
  const int64_t expected_stage[] = {0, 0, 1, 1, 2, 2, 3, 3, 3, 3};
  for (int64_t e = 0; e < 10; ++e) EXPECT_EQ(stage_for_epoch(c, 300, e, 10).stage, expected_stage[e]) << e;
  const StagePlan first = stage_for_epoch(c, 300, 0, 10);
  EXPECT_EQ(first.image_size, 171);  // int(128 + 172 * 1 / 4): stage 0 is not the base size
  EXPECT_DOUBLE_EQ(first.randaug_magnitude, 5);
  EXPECT_DOUBLE_EQ(first.mixup_alpha, 0.0);
  const StagePlan last = stage_for_epoch(c, 300, 9, 10);
  EXPECT_EQ(last.image_size, 300);
  EXPECT_DOUBLE_EQ(last.randaug_magnitude, 15);
  EXPECT_DOUBLE_EQ(last.mixup_alpha, 0.3);
  EXPECT_DOUBLE_EQ(stage_for_epoch(c, 300, 4, 10).randaug_magnitude, 5 + 10.0 * 2 / 3);
  c.progressive.n_stages = 1;
  EXPECT_EQ(stage_for_epoch(c, 224, 5, 10).image_size, 224);
}

// NVIDIA's TF2 EfficientNet V2-S recipe as the registry gives it: 350 epochs in 4 stages of 87 epochs from
// epoch 0, 87, 174, 261 (the last runs to 350), images of int(128 + 172 (s + 1) / 4) = 171, 214, 257, 300 px,
// RandAugment magnitudes linspace(5, 15, 4) = 5, 8.33, 11.67, 15, not clamped at 10: the strengths
// extrapolate (rotation 45 degrees, shear 0.45 at 15).
TEST(ProgressiveStages, EfficientNetV2SRecipe) {
  const RunConfig c = default_config("efficientnet_v2_s");
  ASSERT_EQ(c.progressive.n_stages, 4);
  ASSERT_EQ(c.iterations.num_iter, 350);
  const int64_t train_size = find_model("efficientnet_v2_s").data.train_size;
  ASSERT_EQ(train_size, 300);
  const int64_t sizes[] = {171, 214, 257, 300}, first_epoch[] = {0, 87, 174, 261};
  const double magnitudes[] = {5, 5 + 10.0 / 3, 5 + 20.0 / 3, 15};
  for (int64_t s = 0; s < 4; ++s) {
    const int64_t begin = first_epoch[s], end = s < 3 ? first_epoch[s + 1] : 350;
    for (int64_t e : {begin, end - 1}) {
      const StagePlan p = stage_for_epoch(c, train_size, e, 350);
      EXPECT_EQ(p.stage, s) << "epoch " << e;
      EXPECT_EQ(p.image_size, sizes[s]) << "epoch " << e;
      EXPECT_NEAR(p.randaug_magnitude, magnitudes[s], 1e-12) << "epoch " << e;
      EXPECT_EQ(p.mixup_alpha, 0.0);
      EXPECT_EQ(p.cutmix_alpha, 0.0);
    }
  }
  EXPECT_EQ(c.train_input.augmentation, Augmentation::kRandAugment);
  EXPECT_EQ(c.train_input.randaug_layers, 2);
  Rng rng(1);
  EXPECT_DOUBLE_EQ(std::abs(level_to_argument(AugmentOp::kRotate, 15, AugmentConstants{}, rng)), 45.0);
  EXPECT_DOUBLE_EQ(std::abs(level_to_argument(AugmentOp::kShearX, 15, AugmentConstants{}, rng)), 0.45);
}

}  // namespace
}  // namespace convnets
