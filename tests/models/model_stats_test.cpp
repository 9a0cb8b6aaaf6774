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

// Multiply-adds of the new families against the references' counts (torchvision's _ops, and the counts of
// conv + linear weights of docs/models.md, which reproduce them): V2-S at 300 and 384, M and L at 480,
// B0..B3 at their sizes, ResNeXt / SE-ResNeXt at 224.
TEST(ModelStats, NewFamiliesMacsMatchTheReferences) {
  // (architecture, size, GMACs as published, half a unit of its last digit)
  const std::vector<std::tuple<std::string, int64_t, double, double>> expected = {
      {"efficientnet_v2_s", 300, 5.308, 5e-4},   {"efficientnet_v2_s", 384, 8.366, 5e-4},
      {"efficientnet_v2_m", 480, 24.582, 5e-4},  {"efficientnet_v2_l", 480, 56.08, 5e-3},
      {"efficientnet_v2_b0", 224, 0.718, 5e-4},  {"efficientnet_v2_b1", 240, 1.197, 5e-4},
      {"efficientnet_v2_b2", 260, 1.698, 5e-4},  {"efficientnet_v2_b3", 300, 3.011, 5e-4},
      {"resnext50_32x4d", 224, 4.23, 5e-3},      {"resnext101_32x4d", 224, 7.970, 5e-4},
      {"se_resnext101_32x4d", 224, 7.975, 5e-4}, {"resnext101_32x8d", 224, 16.414, 5e-4},
      {"resnext101_64x4d", 224, 15.46, 5e-3}};
  for (const auto& [name, size, gmacs, half_unit] : expected) {
    int64_t macs = 0;
    for (const auto& r : profile_stages(name, size)) macs += r.macs;
    EXPECT_NEAR(static_cast<double>(macs) / 1e9, gmacs, half_unit) << name << " at " << size;
  }
}

}  // namespace convnets
