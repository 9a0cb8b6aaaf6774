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

}  // namespace
}  // namespace convnets
