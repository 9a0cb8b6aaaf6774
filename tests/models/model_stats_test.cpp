#include "models/model_stats.h"

#include <gtest/gtest.h>

#include <tuple>

namespace convnets {

TEST(ModelStats, ResNet50StagesShapesAndMacs) {
  const auto rows = profile_stages("resnet50", 224);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0].output_shape, (std::vector<int64_t>{64, 56, 56}));
  EXPECT_EQ(rows[4].output_shape, (std::vector<int64_t>{2048, 7, 7}));
  EXPECT_EQ(rows[5].output_shape, (std::vector<int64_t>{1000}));
  // Stem: 7x7x3 MACs for each of 112x112x64 outputs.
  EXPECT_EQ(rows[0].macs, int64_t{112} * 112 * 64 * 7 * 7 * 3);
  EXPECT_EQ(rows[5].macs, int64_t{2048} * 1000);
  int64_t params = 0;
  for (const auto& r : rows) params += r.parameters;
  EXPECT_EQ(params, count_parameters(*create_model("resnet50")));
}

TEST(ModelStats, EfficientNetB0AtItsResolution) {
  const auto rows = profile_stages("efficientnet_b0", 224);
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[1].output_shape, (std::vector<int64_t>{16, 112, 112}));
  EXPECT_EQ(rows[7].output_shape, (std::vector<int64_t>{320, 7, 7}));
  int64_t macs = 0;
  for (const auto& r : rows) macs += r.macs;
  EXPECT_GT(macs, 380'000'000);  // published: 0.39 GFLOPs(MACs)
  EXPECT_LT(macs, 400'000'000);
}

}  // namespace convnets
