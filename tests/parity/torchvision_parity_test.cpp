// Same weights, same input as torchvision (fixtures from tests/python/make_model_fixtures.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/model_stats.h"
#include "models/registry.h"
#include "test_support.h"
#include "util/safetensors.h"
#include "util/weights.h"

namespace convnets {
namespace {

// Python saved even-indexed architectures with torch.save and odd ones with the safetensors package.
std::string weights_path(const std::string& arch) {
  const auto& names = model_names();
  const auto index = std::find(names.begin(), names.end(), arch) - names.begin();
  return testing::fixtures_dir() + "/" + arch + (index % 2 == 0 ? ".pt" : ".safetensors");
}

}  // namespace

class TorchvisionEval : public ::testing::TestWithParam<std::string> {};

// A torchvision state dict of every architecture loads (strict) and gives torchvision's eval logits.
TEST_P(TorchvisionEval, LogitsMatch) {
  const std::string arch = GetParam();
  auto model = create_model(arch);
  load_model_weights(*model, weights_path(arch));
  model->eval();
  auto io = testing::load_fixture(arch + "_io.safetensors");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = model->forward(io.at("input"));
  EXPECT_LT(testing::rel_error(logits, io.at("eval_logits")), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, TorchvisionEval, ::testing::ValuesIn(model_names()));

class TorchvisionTrain : public ::testing::TestWithParam<std::string> {};

// Train mode (batch statistics, dropout and per-sample stochastic depth under a shared seed): loss, every
// parameter gradient and the updated BN running statistics match torchvision's.
TEST_P(TorchvisionTrain, LossGradientsAndRunningStatsMatch) {
  const std::string arch = GetParam();
  auto model = create_model(arch);
  load_model_weights(*model, weights_path(arch));
  auto io = testing::load_fixture(arch + "_io.safetensors");
  model->train();
  torch::manual_seed(1234);  // = TRAIN_SEED in the Python script
  const torch::Tensor logits = model->forward(io.at("input"));
  const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, io.at("target"));
  loss.backward();
  EXPECT_LT(testing::rel_error(logits, io.at("train_logits")), 1e-5);
  EXPECT_LT(testing::rel_error(loss.reshape({1}), io.at("train_loss")), 1e-4);
  int checked = 0;
  for (const auto& p : model->named_parameters()) {
    const torch::Tensor& expected = io.at("grad." + p.key());
    EXPECT_LT(testing::rel_error(p.value().grad(), expected), 1e-4) << p.key();
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(model->parameters().size()));
  for (const auto& b : model->named_buffers()) {
    if (b.key().find("running") == std::string::npos) continue;
    EXPECT_LT(testing::rel_error(b.value(), io.at("after_train." + b.key())), 1e-5) << b.key();
  }
}

INSTANTIATE_TEST_SUITE_P(RecipeModels, TorchvisionTrain,
                         ::testing::Values("resnet50", "efficientnet_b0", "efficientnet_b4"));

TEST(Torchvision, ParameterCountsOfAllThirteen) {
  std::ifstream f(testing::fixtures_dir() + "/parameter_counts.json");
  ASSERT_TRUE(f) << "fixture missing";
  const auto counts = nlohmann::json::parse(f);
  ASSERT_EQ(counts.size(), 13u);
  for (const auto& name : model_names()) {
    EXPECT_EQ(count_parameters(*create_model(name)), counts.at(name).get<int64_t>()) << name;
  }
}

class Timm : public ::testing::TestWithParam<std::string> {};

// timm checkpoints: EfficientNet through the name mapping, ResNet directly.
TEST_P(Timm, StateDictLoadsAndLogitsMatch) {
  const std::string arch = GetParam();
  auto model = create_model(arch);
  const LoadReport report = load_model_weights(*model, testing::fixtures_dir() + "/timm_" + arch + ".pt");
  EXPECT_TRUE(report.clean());
  model->eval();
  auto io = testing::load_fixture("timm_" + arch + "_io.safetensors");
  torch::NoGradGuard no_grad;
  EXPECT_LT(testing::rel_error(model->forward(io.at("input")), io.at("eval_logits")), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Models, Timm, ::testing::Values("efficientnet_b0", "resnet50"));

}  // namespace convnets
