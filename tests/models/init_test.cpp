#include "models/init.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

namespace convnets {

TEST(Init, TfFansOnPyTorchLayouts) {
  const auto conv = torch::empty({64, 32, 3, 3});
  EXPECT_EQ(tf_fan(conv, 1, FanMode::kFanIn), 3 * 3 * 32);
  EXPECT_EQ(tf_fan(conv, 1, FanMode::kFanOut), 3 * 3 * 64);
  const auto depthwise = torch::empty({96, 1, 5, 5});  // TF kernel (5, 5, 96, 1)
  EXPECT_EQ(tf_fan(depthwise, 96, FanMode::kFanIn), 5 * 5 * 96);
  EXPECT_EQ(tf_fan(depthwise, 96, FanMode::kFanOut), 5 * 5);
  const auto dense = torch::empty({1000, 2048});
  EXPECT_EQ(tf_fan(dense, 1, FanMode::kFanIn), 2048);
  EXPECT_EQ(tf_fan(dense, 1, FanMode::kFanOut), 1000);
}

// VarianceScaling(2.0, truncated normal): variance 2/fan after truncation, no value beyond 2 sigma.
TEST(Init, VarianceScalingTruncatedStatistics) {
  torch::manual_seed(0);
  torch::Tensor w = torch::empty({256, 128, 3, 3});
  const int64_t fan = 128 * 9;
  variance_scaling_truncated_(w, 2.0, fan);
  const double expected_std = std::sqrt(2.0 / fan);
  EXPECT_NEAR(w.std().item<double>() / expected_std, 1.0, 0.01);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.01 * expected_std);
  const double sigma = expected_std / 0.87962566103423978;
  EXPECT_LE(w.abs().max().item<double>(), 2 * sigma * (1 + 1e-6));
  EXPECT_GT(w.abs().max().item<double>(), 1.9 * sigma);  // the tails are really there
}

TEST(Init, ParseFanModeNamesAllowedValues) {
  EXPECT_EQ(parse_fan_mode("fan_in"), FanMode::kFanIn);
  EXPECT_EQ(parse_fan_mode("fan_out"), FanMode::kFanOut);
  try {
    parse_fan_mode("fan_avg");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fan_in, fan_out"), std::string::npos);
  }
}

}  // namespace convnets
