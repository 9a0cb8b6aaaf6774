// Every AutoAugment / RandAugment op against PIL (fixtures from make_augment_fixtures.py).
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "data/augment.h"
#include "test_support.h"
#include "util/safetensors.h"

namespace convnets {

// Tolerances: exact for the lookup-table ops; +-1 for the blends (PIL's smoothing filter rounds in fixed
// point); geometric ops may resolve a nearest-neighbour tie differently on < 0.5% of pixels.
TEST(AugmentOps, MatchPil) {
  auto fx = testing::load_fixture("augment/expected.safetensors");
  const ImageU8 source = testing::image_of(fx.at("source"));
  int checked = 0;
  for (int o = 0; o <= static_cast<int>(AugmentOp::kSolarizeAdd); ++o) {
    const auto op = static_cast<AugmentOp>(o);
    if (op == AugmentOp::kCutout) continue;  // random centre: tested below
    for (int k = 0; fx.count(op_name(op) + "." + std::to_string(k)); ++k) {
      const std::string key = op_name(op) + "." + std::to_string(k);
      ImageU8 image = source;
      apply_op(image, op, fx.at(key + ".arg").item<double>());
      const auto ours = torch::from_blob(image.pixels.data(), {image.height, image.width, 3}, torch::kUInt8)
                            .to(torch::kInt);
      const auto diff = (ours - fx.at(key).to(torch::kInt)).abs();
      const bool geometric = op == AugmentOp::kRotate || op == AugmentOp::kShearX || op == AugmentOp::kShearY;
      if (geometric) {
        EXPECT_LT(diff.gt(0).any(2).to(torch::kFloat).mean().item<double>(), 0.005) << key;
      } else {
        const bool blend = op == AugmentOp::kColor || op == AugmentOp::kContrast ||
                           op == AugmentOp::kBrightness || op == AugmentOp::kSharpness;
        EXPECT_LE(diff.max().item<int>(), blend ? 1 : 0) << key;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 30);
}

TEST(AugmentOps, CutoutPastesAGreySquareAndPosterizeZeroBitsKeepsOne) {
  ImageU8 image(50, 60);
  std::fill(image.pixels.begin(), image.pixels.end(), 7);
  Rng rng(2);
  apply_op(image, AugmentOp::kCutout, 10, &rng);
  int grey = 0;
  for (auto v : image.pixels) grey += v == 128;
  EXPECT_GT(grey, 0);
  EXPECT_LE(grey, 20 * 20 * 3);
  ImageU8 ramp(1, 256);
  for (int x = 0; x < 256; ++x)
    ramp.pixels[3 * x] = ramp.pixels[3 * x + 1] = ramp.pixels[3 * x + 2] = static_cast<uint8_t>(x);
  apply_op(ramp, AugmentOp::kPosterize, 0);
  EXPECT_EQ(ramp.pixels[3 * 127], 0);
  EXPECT_EQ(ramp.pixels[3 * 200], 128);
}

// Every op's level -> argument mapping at every level 0..10, against the spec's table (docs/recipes.md),
// with both constant sets (AutoAugment 100 / 250, RandAugment 40 / 100); the signed ops take both signs.
TEST(AugmentPolicies, EveryOpsLevelMappingFollowsTheSpec) {
  using O = AugmentOp;
  Rng rng(8);
  for (const AugmentConstants k : {AugmentConstants{100, 250}, AugmentConstants{40, 100}}) {
    for (int level = 0; level <= 10; ++level) {
      const double l = level / 10.0;
      const std::vector<std::pair<O, double>> unsigned_ops{{O::kColor, l * 1.8 + 0.1},
                                                           {O::kContrast, l * 1.8 + 0.1},
                                                           {O::kBrightness, l * 1.8 + 0.1},
                                                           {O::kSharpness, l * 1.8 + 0.1},
                                                           {O::kPosterize, std::floor(l * 4)},
                                                           {O::kSolarize, std::floor(l * 256)},
                                                           {O::kSolarizeAdd, std::floor(l * 110)},
                                                           {O::kCutout, std::floor(l * k.cutout)},
                                                           {O::kAutoContrast, 0},
                                                           {O::kEqualize, 0},
                                                           {O::kInvert, 0},
                                                           {O::kIdentity, 0}};
      for (const auto& [op, expected] : unsigned_ops)
        EXPECT_NEAR(level_to_argument(op, level, k, rng), expected, 1e-12)
            << op_name(op) << " level " << level;
      const std::vector<std::pair<O, double>> signed_ops{{O::kRotate, l * 30},
                                                         {O::kShearX, l * 0.3},
                                                         {O::kShearY, l * 0.3},
                                                         {O::kTranslateX, l * k.translate},
                                                         {O::kTranslateY, l * k.translate}};
      for (const auto& [op, magnitude] : signed_ops) {
        bool positive = false, negative = false;
        for (int draw = 0; draw < 64; ++draw) {
          const double a = level_to_argument(op, level, k, rng);
          EXPECT_NEAR(std::abs(a), magnitude, 1e-12) << op_name(op) << " level " << level;
          positive |= a > 0;
          negative |= a < 0;
        }
        if (level > 0) {
          EXPECT_TRUE(positive && negative) << op_name(op) << " level " << level << ": random sign";
        }
      }
    }
  }
}

TEST(AugmentPolicies, LevelMappingAndSelectionFrequencies) {
  Rng rng(4);
  EXPECT_DOUBLE_EQ(level_to_argument(AugmentOp::kColor, 10, {}, rng), 1.9);
  EXPECT_DOUBLE_EQ(level_to_argument(AugmentOp::kPosterize, 6, {}, rng), 2);
  EXPECT_DOUBLE_EQ(level_to_argument(AugmentOp::kSolarize, 10, {}, rng), 256);
  EXPECT_DOUBLE_EQ(level_to_argument(AugmentOp::kSolarizeAdd, 3, {}, rng), 33);
  EXPECT_DOUBLE_EQ(std::abs(level_to_argument(AugmentOp::kTranslateY, 9, {}, rng)), 225);
  EXPECT_DOUBLE_EQ(std::abs(level_to_argument(AugmentOp::kTranslateX, 5, {40, 100}, rng)), 50);
  // RandAugment: 17 equally likely choices, always applied.
  std::vector<int> counts(17, 0);
  ImageU8 tiny(8, 8);
  const int n = 17000;
  for (int i = 0; i < n; ++i) {
    for (const auto& a : rand_augment(tiny, 1, 9, rng)) ++counts[static_cast<int>(a.op)];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 17.0, 5 * std::sqrt(n / 17.0));
  // AutoAugment: Equalize is in 10 sub-policies at various probabilities: expected rate
  // sum(p) / 25 = (.8+.6+.4+.8+.4+1+1+.6+.8+0+1+.6) / 25 = 8 / 25 per image.
  int equalize = 0;
  for (int i = 0; i < n; ++i) {
    for (const auto& a : auto_augment(tiny, rng)) equalize += a.op == AugmentOp::kEqualize;
  }
  EXPECT_NEAR(equalize / static_cast<double>(n), 8.0 / 25.0, 0.015);
}

}  // namespace convnets
