#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <tuple>

#include "data/mixing.h"
#include "test_support.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/loss.h"
#include "util/safetensors.h"

namespace convnets {

TEST(GradScaler, UnscalesSkipsAndBacksOffOnInjectedInf) {
  GradScaler scaler({.init_scale = 1024, .growth_interval = 3});
  torch::Tensor w = torch::ones({4}, torch::requires_grad());
  auto step = [&](bool inject_inf) {
    w.mutable_grad().reset();
    scaler.scale((w * torch::tensor({1.f, 2.f, 3.f, 4.f})).sum()).backward();
    if (inject_inf) w.mutable_grad()[2] = std::numeric_limits<float>::infinity();
    const bool ok = scaler.unscale({w});
    scaler.update();
    return ok;
  };
  EXPECT_TRUE(step(false));
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({1.f, 2.f, 3.f, 4.f})));  // unscaled exactly
  EXPECT_FALSE(step(true));
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 512);  // backed off
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(step(false));
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 1024);  // grew after 3 finite steps
  GradScaler fixed({.init_scale = 128, .dynamic = false});
  w.mutable_grad().reset();
  fixed.scale(w.sum() * std::numeric_limits<float>::infinity()).backward();
  EXPECT_FALSE(fixed.unscale({w}));
  fixed.update();
  EXPECT_DOUBLE_EQ(fixed.current_scale(), 128);  // static
}

// The dynamic scale step by step (torch.amp.GradScaler's rule): it grows only after `growth_interval`
// consecutive finite steps (not one earlier), grows again after another interval, backs off by its factor on
// every overflow (several in a row compound), and an overflow restarts the count of finite steps.
TEST(GradScaler, GrowsExactlyEveryIntervalAndBacksOffOnEveryOverflow) {
  for (const auto& [growth, backoff, interval] :
       std::vector<std::tuple<double, double, int64_t>>{{2.0, 0.5, 3}, {3.0, 0.25, 2}, {2.0, 0.5, 1}}) {
    GradScaler scaler({.init_scale = 1024,
                       .growth_factor = growth,
                       .backoff_factor = backoff,
                       .growth_interval = interval});
    torch::Tensor w = torch::ones({3}, torch::requires_grad());
    auto step = [&](bool inject_inf) {
      w.mutable_grad().reset();
      scaler.scale(w.sum()).backward();
      if (inject_inf) w.mutable_grad()[1] = std::numeric_limits<float>::quiet_NaN();
      const bool ok = scaler.unscale({w});
      scaler.update();
      return ok;
    };
    const std::string what = "growth " + std::to_string(growth) + ", backoff " + std::to_string(backoff) +
                             ", interval " + std::to_string(interval);
    double expected = 1024;
    for (int round = 0; round < 2; ++round) {  // two growths in a row
      for (int64_t i = 1; i < interval; ++i) {
        EXPECT_TRUE(step(false));
        EXPECT_DOUBLE_EQ(scaler.current_scale(), expected) << what << ": grew after " << i << " steps";
      }
      EXPECT_TRUE(step(false));
      expected *= growth;
      EXPECT_DOUBLE_EQ(scaler.current_scale(), expected) << what << ": growth " << round + 1;
    }
    // Two overflows in a row back off twice.
    EXPECT_FALSE(step(true));
    expected *= backoff;
    EXPECT_DOUBLE_EQ(scaler.current_scale(), expected) << what;
    EXPECT_FALSE(step(true));
    expected *= backoff;
    EXPECT_DOUBLE_EQ(scaler.current_scale(), expected) << what;
    EXPECT_EQ(scaler.skipped_steps(), 2);
    // interval - 1 finite steps, an overflow: the count restarts, so it takes a full interval again.
    for (int64_t i = 1; i < interval; ++i) EXPECT_TRUE(step(false));
    EXPECT_FALSE(step(true));
    expected *= backoff;
    for (int64_t i = 1; i < interval; ++i) EXPECT_TRUE(step(false));
    EXPECT_DOUBLE_EQ(scaler.current_scale(), expected) << what << ": the count survived an overflow";
    EXPECT_TRUE(step(false));
    EXPECT_DOUBLE_EQ(scaler.current_scale(), expected * growth) << what;
  }
}

TEST(Ema, MatchesPythonReferenceIncludingBuffers) {
  torch::manual_seed(1);
  torch::nn::Sequential model(torch::nn::Linear(3, 2), torch::nn::BatchNorm1d(2));
  ModelEma ema(*model, 0.9);
  const int64_t steps = 60;
  std::vector<torch::Tensor> history = {torch::cat({model->parameters()[0].flatten(), model->buffers()[0]})};
  for (int64_t t = 1; t < steps; ++t) {
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p));
      for (auto& b : model->buffers())
        if (b.is_floating_point()) b.add_(torch::rand_like(b));
    }
    ema.update(*model, t);
    history.push_back(torch::cat({model->parameters()[0].flatten(), model->buffers()[0]}));
  }
  testing::ScratchDir dir;
  save_safetensors(dir.file("in.safetensors"), {{"weights", torch::stack(history).to(torch::kFloat64)},
                                                {"decay", torch::tensor({0.9}, torch::kFloat64)}});
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_ema.py " + dir.file("in.safetensors") + " " +
                          dir.file("out.safetensors");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto ref = load_safetensors(dir.file("out.safetensors")).tensors.at(0).second;
  // The final EMA of the first weight matrix and of BN's running mean.
  const auto& s = ema.state();
  const torch::Tensor ours = torch::cat({s[0].second.flatten(), s[4].second});
  EXPECT_EQ(s[4].first, "1.running_mean");
  EXPECT_LT(testing::rel_error(ours, ref[steps - 2]), 1e-6);
  EXPECT_DOUBLE_EQ(ema.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(ema.decay_at(1000), 0.9);
}

TEST(Loss, SoftTargetsEqualTorchLabelSmoothing) {
  torch::manual_seed(2);
  const torch::Tensor logits = torch::randn({6, 10}), labels = torch::randint(0, 10, {6}, torch::kInt64);
  const auto ref = torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(0.1));
  EXPECT_NEAR(soft_cross_entropy(logits, smooth_one_hot(labels, 10, 0.1)).item<double>(), ref.item<double>(),
              1e-6);
}

}  // namespace convnets
