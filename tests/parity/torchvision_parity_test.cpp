// Same weights, same input as torchvision (fixtures from tests/python/make_model_fixtures.py).
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/model_stats.h"
#include "models/registry.h"
#include "test_support.h"
#include "util/safetensors.h"
#include "util/weights.h"

namespace convnets {
namespace {

// Python saved even-indexed architectures with torch.save and odd ones with the safetensors package.
std::string weights_path(const std::string& arch) { return testing::fixture_weights(arch); }

// Float64 runs make the comparison exact up to summation order (~1e-16 per operation; 1e-10 leaves room for
// depth and ill-conditioning); float32 runs are held to the shape-derived fp32_forward_bound.
constexpr double kFloat64Identity = 1e-10;

// The weights run as the app runs them (testing::reference_model): the BatchNorm convention (and padding) of
// the library that wrote them.
void expect_eval_logits_match(const std::string& arch, const std::string& weights,
                              const std::map<std::string, torch::Tensor>& io) {
  const torch::Tensor& ref = io.at("eval_logits");  // float64
  ASSERT_EQ(ref.scalar_type(), torch::kDouble);
  ASSERT_GE(testing::distinct_top1(ref), 3) << "the reference gives the same class for every photo";
  torch::NoGradGuard no_grad;
  auto model = testing::reference_model(arch, weights);
  // Our float32 run must land as close to float64 as the shape-derived estimate allows, or as close as
  // PyTorch's own float32 run does (these are random networks: some amplify rounding more than the estimate
  // assumes; efficientnet_b7 at 64 px: 3e-3), with a factor 4 for another summation order.
  const double torch_fp32_error = testing::rel_error(io.at("eval_logits_fp32"), ref);
  const double bound = std::max(testing::fp32_forward_bound(*model), 4 * torch_fp32_error);
  const torch::Tensor logits32 = model->forward(io.at("input"));
  EXPECT_LT(testing::rel_error(logits32, ref), bound)
      << "float32 (PyTorch's own: " << torch_fp32_error << ")";
  model->to(torch::kDouble);
  const torch::Tensor logits64 = model->forward(io.at("input").to(torch::kDouble));
  EXPECT_LT(testing::rel_error(logits64, ref), kFloat64Identity) << "float64";
  EXPECT_TRUE(torch::equal(logits64.argmax(1), ref.argmax(1)));
}

}  // namespace

class TorchvisionEval : public ::testing::TestWithParam<std::string> {};

// A torchvision state dict of every architecture loads (strict) and gives torchvision's eval logits on
// photos.
TEST_P(TorchvisionEval, LogitsMatch) {
  const std::string arch = GetParam();
  expect_eval_logits_match(arch, weights_path(arch), testing::load_fixture(arch + "_io.safetensors"));
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, TorchvisionEval, ::testing::ValuesIn(model_names()), param_name);

class TorchvisionEvalFullSize : public ::testing::TestWithParam<std::string> {};

// The recipe families' first models again at their own resolution, 224 px (EfficientNet-B3 and B4 at 300 and
// 380 px: tests/app/check_foreign_weights.py).
TEST_P(TorchvisionEvalFullSize, LogitsMatch) {
  const std::string arch = GetParam();
  expect_eval_logits_match(arch, testing::fixtures_dir() + "/" + arch + "_full.pt",
                           testing::load_fixture(arch + "_full_io.safetensors"));
}

INSTANTIATE_TEST_SUITE_P(RecipeModels, TorchvisionEvalFullSize,
                         ::testing::Values("resnet50", "efficientnet_b0"), param_name);

class TorchvisionTrain : public ::testing::TestWithParam<std::string> {};

// Train mode (batch statistics, dropout and per-sample stochastic depth under a shared seed) in float64:
// loss, every parameter gradient and the updated BN running statistics are torchvision's up to summation
// order. (Float32 gradients of a ResNet at initialisation move ~2% with the summation order alone, see
// docs/gpu.md, so a float32 comparison could not tell an error from another CPU's kernels.)
TEST_P(TorchvisionTrain, LossGradientsAndRunningStatsMatch) {
  const std::string arch = GetParam();
  auto model = testing::reference_model(arch, weights_path(arch));
  model->to(torch::kDouble);
  auto io = testing::load_fixture(arch + "_io.safetensors");
  model->train();
  torch::manual_seed(1234);  // = TRAIN_SEED in the Python script
  const torch::Tensor logits = model->forward(io.at("train_input"));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, io.at("target"));
  loss.backward();
  EXPECT_LT(testing::rel_error(logits, io.at("train_logits")), kFloat64Identity);
  EXPECT_LT(testing::rel_error(loss.reshape({1}), io.at("train_loss")), kFloat64Identity);
  int checked = 0;
  double total = 0;
  for (const auto& p : model->named_parameters())
    total += io.at("grad." + p.key()).square().sum().item<double>();
  for (const auto& p : model->named_parameters()) {
    const torch::Tensor& expected = io.at("grad." + p.key());
    ++checked;
    // Gradients that are zero in exact arithmetic (a BatchNorm bias feeding a train-mode BatchNorm through a
    // 1x1 convolution) are rounding noise in both runs: no relative error exists for them.
    if (expected.norm().item<double>() < 1e-7 * std::sqrt(total)) continue;
    // Gradients carry the ill-conditioning of train-mode BatchNorm at initialisation (~3e5 in float32
    // measurements: 2e-2 relative from u = 6e-8), so 1e-16 becomes up to ~1e-10: bound 1e-8.
    EXPECT_LT(testing::rel_error(p.value().grad(), expected), 1e-8) << p.key();
  }
  EXPECT_EQ(checked, static_cast<int>(model->parameters().size()));
  for (const auto& b : model->named_buffers()) {
    if (b.key().find("running") == std::string::npos) continue;
    EXPECT_LT(testing::rel_error(b.value(), io.at("after_train." + b.key())), kFloat64Identity) << b.key();
  }
}

// The recipe models at 128 px and one architecture per kind of block of the later families at 64 px
// (tests/python/make_model_fixtures.py TRAIN_CHECKED: grouped convolutions, squeeze-excitation, torchvision's
// FusedMBConv, timm's TensorFlow-padded V2-B with its drop path), against the library each comes from; the
// other sizes of a family differ in widths, depths and rates, which the eval comparisons above and the
// registry's stated rates (tests/models) cover.
INSTANTIATE_TEST_SUITE_P(RecipeModels, TorchvisionTrain,
                         ::testing::Values("resnet50", "efficientnet_b0", "efficientnet_b4"), param_name);
INSTANTIATE_TEST_SUITE_P(NewFamilies, TorchvisionTrain,
                         ::testing::Values("resnext50_32x4d", "se_resnext101_32x4d", "efficientnet_v2_s",
                                           "efficientnet_v2_b0"),
                         param_name);

TEST(Torchvision, ParameterCountsOfEveryArchitecture) {
  // Each part of tests/python/make_model_fixtures.py counted its own architectures.
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& e : std::filesystem::directory_iterator(testing::fixtures_dir())) {
    if (e.path().filename().string().rfind("parameter_counts_", 0) != 0) continue;
    std::ifstream f(e.path());
    counts.update(nlohmann::json::parse(f));
  }
  ASSERT_EQ(counts.size(), model_names().size());
  for (const auto& name : model_names()) {
    EXPECT_EQ(count_parameters(*create_model(name)), counts.at(name).get<int64_t>()) << name;
  }
}

class Timm : public ::testing::TestWithParam<std::string> {};

// timm checkpoints (timm's convention is PyTorch's eps 1e-5 too): EfficientNet through the name mapping,
// ResNet directly.
TEST_P(Timm, StateDictLoadsAndLogitsMatch) {
  const std::string arch = GetParam();
  expect_eval_logits_match(arch, testing::fixtures_dir() + "/timm_" + arch + ".pt",
                           testing::load_fixture("timm_" + arch + "_io.safetensors"));
}

// timm's files of architectures whose own layout is torchvision's: renamed, run with timm's conventions
// (efficientnet_v2_s from tf_efficientnetv2_s: TensorFlow's padding, eps 1e-3).
INSTANTIATE_TEST_SUITE_P(Models, Timm, ::testing::Values("efficientnet_b0", "resnet50", "efficientnet_v2_s"),
                         param_name);

}  // namespace convnets
