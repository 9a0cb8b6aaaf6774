// channels_last and autocast must not break the models.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/registry.h"
#include "test_support.h"

namespace convnets {

class Precision : public ::testing::TestWithParam<std::string> {};

TEST_P(Precision, ChannelsLastMatchesContiguous) {
  torch::manual_seed(0);
  auto model = create_model(GetParam(), {.num_classes = 10});
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 64, 64});
  const torch::Tensor ref = model->forward(x);
  model->to(torch::kCPU, torch::kFloat, false);
  for (auto& p : model->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
  const torch::Tensor y = model->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_LT(testing::rel_error(y, ref), 1e-4);
}

TEST_P(Precision, CpuAutocastBf16ForwardAndBackward) {
  torch::manual_seed(0);
  auto model = create_model(GetParam(), {.num_classes = 10});
  model->train();
  const torch::Tensor x = torch::randn({2, 3, 64, 64});
  torch::Tensor ref;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    ref = model->forward(x);
    model->train();
  }
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  model->eval();
  torch::Tensor eval_out;
  {
    torch::NoGradGuard no_grad;
    eval_out = model->forward(x);
  }
  model->train();
  const torch::Tensor out = model->forward(x);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_LT(testing::rel_error(eval_out, ref), 5e-2);  // bf16 has 8 bits of mantissa
  const torch::Tensor loss =
      torch::nn::functional::cross_entropy(out.to(torch::kFloat), torch::tensor({1, 2}));
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Precision, ::testing::Values("resnet18", "resnet50", "efficientnet_b0"));

}  // namespace convnets
