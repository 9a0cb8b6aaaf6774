#include "train/train_step.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "data/mixing.h"
#include "models/registry.h"
#include "test_support.h"
#include "train/param_groups.h"

namespace convnets {
namespace {

// BN in eval mode: with batch statistics, micro-batches and the whole batch would normalise differently.
ConvNetPtr frozen_bn_model(uint64_t seed, torch::ScalarType dtype = torch::kFloat) {
  torch::manual_seed(seed);
  auto model = create_model("resnet18", {.num_classes = 10});
  model->to(dtype);
  model->eval();
  return model;
}

}  // namespace

// An identity (sum of 4 quarter-batch gradients / 4 == the whole batch's gradient), so it is checked in
// float64: only summation order differs, and in float64 that is ~1e-16 per operation whatever the CPU's
// kernels (fp32 already differs by ~1e-5 between AVX2 and AVX-512 machines).
TEST(TrainStep, AccumulatedMicroBatchesEqualOneBigBatch) {
  torch::manual_seed(3);
  const torch::Tensor images = torch::randn({8, 3, 32, 32}, torch::kDouble);
  const torch::Tensor targets =
      smooth_one_hot(torch::randint(0, 10, {8}, torch::kInt64), 10, 0.1).to(torch::kDouble);
  auto big = frozen_bn_model(5, torch::kDouble), small = frozen_bn_model(5, torch::kDouble);
  MomentumSgd big_opt(weight_decay_groups(*big, DecayPolicy::kAllButBatchNorm, 1e-4), 0.9);
  MomentumSgd small_opt(weight_decay_groups(*small, DecayPolicy::kAllButBatchNorm, 1e-4), 0.9);
  TrainStep big_step(big, big_opt, {});
  TrainStep small_step(small, small_opt, {.accumulation_steps = 4});
  for (int update = 0; update < 2; ++update) {
    EXPECT_TRUE(big_step.micro_step(images, targets, 0.05).updated);
    for (int k = 0; k < 4; ++k) {
      const auto r = small_step.micro_step(images.narrow(0, 2 * k, 2), targets.narrow(0, 2 * k, 2), 0.05);
      EXPECT_EQ(r.updated, k == 3);
    }
  }
  EXPECT_EQ(small_step.updates(), 2);
  const auto a = big->parameters(), b = small->parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].scalar_type(), torch::kDouble);
    EXPECT_LT(testing::rel_error(b[i], a[i]), 1e-10) << i;
  }
}

TEST(TrainStep, ClippingScalerAndEma) {
  torch::manual_seed(4);
  auto model = frozen_bn_model(6);
  MomentumSgd opt(weight_decay_groups(*model, DecayPolicy::kAllButBatchNorm, 0.0), 0.0);
  GradScaler scaler({.init_scale = 256});
  ModelEma ema(*model, 0.99);
  TrainStep step(model, opt, {.grad_clip_norm = 1e-3}, &scaler, &ema);
  const auto before = model->parameters()[0].clone();
  const torch::Tensor images = torch::randn({4, 3, 32, 32}) * 10;
  const auto targets = smooth_one_hot(torch::randint(0, 10, {4}, torch::kInt64), 10, 0.0);
  const auto r = step.micro_step(images, targets, 1.0);
  EXPECT_TRUE(r.updated);
  EXPECT_FALSE(r.skipped);
  // SGD without momentum at lr 1 moves the weights by exactly the clipped gradient: total norm <= 1e-3.
  double moved = 0;
  std::vector<torch::Tensor> params = model->parameters();
  moved += (params[0] - before).norm().item<double>();
  EXPECT_LE(moved, 1e-3 * (1 + 1e-4));
  EXPECT_GT(moved, 0);
  EXPECT_FALSE(torch::equal(ema.state()[0].second, before));  // the EMA moved too
  // An overflow is skipped: weights stay, the scale backs off.
  const auto kept = params[0].clone();
  const auto skipped = step.micro_step(images * std::numeric_limits<float>::infinity(), targets, 1.0);
  EXPECT_TRUE(skipped.skipped);
  EXPECT_TRUE(torch::equal(params[0], kept));
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 128);
}

TEST(TrainStep, CpuAutocastBf16TrainsWithFp32Master) {
  auto model = frozen_bn_model(7);
  model->train();
  MomentumSgd opt(weight_decay_groups(*model, DecayPolicy::kAllButBatchNorm, 0.0), 0.9);
  TrainStep step(model, opt, {.autocast_dtype = torch::kBFloat16});
  const torch::Tensor images = torch::randn({4, 3, 32, 32});
  const auto targets = smooth_one_hot(torch::tensor({1, 2, 3, 4}, torch::kInt64), 10, 0.0);
  const double first = step.micro_step(images, targets, 0.05).loss.item<double>();
  double last = first;
  for (int i = 0; i < 5; ++i) last = step.micro_step(images, targets, 0.05).loss.item<double>();
  EXPECT_LT(last, first);  // the loss falls on a fixed batch
  EXPECT_EQ(model->parameters()[0].scalar_type(), torch::kFloat);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));  // the guard restored the state
}

}  // namespace convnets
