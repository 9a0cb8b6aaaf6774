#include "data/mixing.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdlib>

#include "test_support.h"
#include "util/safetensors.h"

namespace convnets {

TEST(Mixing, BetaSamplerMoments) {
  Rng rng(9);
  for (double a : {0.2, 1.0, 2.5}) {
    double sum = 0, sum2 = 0;
    const int n = 40000;
    for (int i = 0; i < n; ++i) {
      const double v = rng.beta(a, a);
      ASSERT_GE(v, 0.0);
      ASSERT_LE(v, 1.0);
      sum += v;
      sum2 += v * v;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01) << a;
    EXPECT_NEAR(var, 1.0 / (4 * (2 * a + 1)), 0.01) << a;  // Var Beta(a, a)
  }
}

TEST(Mixing, PairingAndLambdaRules) {
  Rng rng(1);
  // TF recipes: reversed partners, per-example lambdas; EfficientNet's max(lambda, 1 - lambda).
  const MixParams tf = sample_mix_params(6, 8, 8, {.mixup_alpha = 0.2, .symmetric_max = true}, rng);
  EXPECT_EQ(tf.partner, (std::vector<int64_t>{5, 4, 3, 2, 1, 0}));
  for (double l : tf.lambda) EXPECT_GE(l, 0.5);
  EXPECT_NE(tf.lambda[0], tf.lambda[1]);
  // PyTorch recipe: one lambda per batch, random permutation.
  const MixParams pyt =
      sample_mix_params(64, 8, 8, {.mixup_alpha = 0.2, .per_example = false, .permute_partners = true}, rng);
  for (double l : pyt.lambda) EXPECT_EQ(l, pyt.lambda[0]);
  std::vector<int64_t> sorted = pyt.partner;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  // Both on: first half mixup, second half cutmix, each half reversed within itself.
  const MixParams both = sample_mix_params(8, 16, 16, {.mixup_alpha = 0.2, .cutmix_alpha = 1.0}, rng);
  EXPECT_EQ(both.partner, (std::vector<int64_t>{3, 2, 1, 0, 7, 6, 5, 4}));
  EXPECT_EQ(both.cut, (std::vector<bool>{false, false, false, false, true, true, true, true}));
}

// The device mixing equals a NumPy reference written from the spec, on the same draws.
TEST(Mixing, MatchesSpecReferenceOnTheSameDraws) {
  torch::manual_seed(0);
  const int64_t n = 8, k = 10;
  const torch::Tensor images = torch::randn({n, 3, 12, 16}).contiguous(at::MemoryFormat::ChannelsLast);
  const torch::Tensor labels = torch::randint(0, k, {n}, torch::kInt64);
  Rng rng(5);
  const MixParams p = sample_mix_params(n, 12, 16, {.mixup_alpha = 0.4, .cutmix_alpha = 1.0}, rng);
  const auto [mixed, targets] = apply_mix(images, labels, k, 0.1, p);
  EXPECT_TRUE(mixed.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_LT((targets.sum(1) - 1).abs().max().item<double>(), 1e-6);
  testing::ScratchDir dir;
  std::vector<uint8_t> cut(p.cut.begin(), p.cut.end());
  save_safetensors(dir.file("mix.safetensors"),
                   {{"images", images.contiguous()},
                    {"labels", labels},
                    {"num_classes", torch::tensor({k})},
                    {"eps", torch::tensor({0.1}, torch::kFloat64)},
                    {"partner", torch::tensor(p.partner)},
                    {"lambda", torch::tensor(p.lambda, torch::kFloat64)},
                    {"box", torch::tensor(p.box)},
                    {"cut", torch::from_blob(cut.data(), {n}, torch::kUInt8).clone()},
                    {"mixed", mixed.contiguous()},
                    {"targets", targets}});
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_mixing.py " + dir.file("mix.safetensors");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Every example's partner has another label, so a target that does not mix the labels cannot pass: the soft
// target of example i puts lambda_i (mixup) or its unpasted area (CutMix) on its own label and the rest on
// the partner's, then label smoothing; the images mix with the same weights.
TEST(Mixing, SoftTargetsCarryBothLabelsInTheDrawnProportions) {
  torch::manual_seed(1);
  const int64_t n = 8, k = 10, h = 12, w = 16;
  const double eps = 0.1;
  const torch::Tensor images = torch::randn({n, 3, h, w}, torch::kDouble);
  const torch::Tensor labels = torch::arange(n, torch::kInt64);  // all different
  Rng rng(3);
  const MixParams p = sample_mix_params(n, h, w, {.mixup_alpha = 0.4, .cutmix_alpha = 1.0}, rng);
  const auto [mixed, targets] = apply_mix(images, labels, k, eps, p);
  int mixed_examples = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = p.partner[static_cast<size_t>(i)];
    ASSERT_NE(labels[i].item<int64_t>(), labels[j].item<int64_t>());
    double own = p.lambda[static_cast<size_t>(i)];
    if (p.cut[static_cast<size_t>(i)]) {
      const int64_t* b = &p.box[static_cast<size_t>(i) * 4];
      own = 1.0 - static_cast<double>((b[2] - b[0]) * (b[3] - b[1])) / static_cast<double>(h * w);
    } else {
      const torch::Tensor expected = images[i] * own + images[j] * (1 - own);
      EXPECT_LT((mixed[i] - expected).abs().max().item<double>(), 1e-6) << i;
    }
    if (own > 0.01 && own < 0.99) ++mixed_examples;
    EXPECT_NEAR(targets[i][i].item<double>(), own * (1 - eps) + eps / k, 1e-6) << i;
    EXPECT_NEAR(targets[i][j].item<double>(), (1 - own) * (1 - eps) + eps / k, 1e-6) << i;
    EXPECT_NEAR(targets[i].sum().item<double>(), 1.0, 1e-6) << i;
  }
  EXPECT_GE(mixed_examples, 4);  // the draws really mix
}

TEST(Mixing, NoMixingIsLabelSmoothingOnly) {
  Rng rng(2);
  const torch::Tensor images = torch::randn({4, 3, 5, 5});
  const torch::Tensor labels = torch::tensor({0, 1, 2, 3}, torch::kInt64);
  const auto [mixed, targets] = apply_mix(images, labels, 4, 0.1, sample_mix_params(4, 5, 5, {}, rng));
  EXPECT_TRUE(torch::equal(mixed, images));
  EXPECT_TRUE(torch::allclose(targets, smooth_one_hot(labels, 4, 0.1)));
  EXPECT_NEAR(targets[0][0].item<double>(), 0.9 + 0.025, 1e-6);
}

}  // namespace convnets
