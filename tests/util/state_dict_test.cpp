#include "util/state_dict.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/registry.h"

namespace convnets {

TEST(StateDict, PythonOrderAndNames) {
  auto model = create_model("resnet18");
  const NamedTensors sd = state_dict(*model);
  ASSERT_GE(sd.size(), 8u);
  EXPECT_EQ(sd[0].first, "conv1.weight");
  EXPECT_EQ(sd[1].first, "bn1.weight");
  EXPECT_EQ(sd[2].first, "bn1.bias");
  EXPECT_EQ(sd[3].first, "bn1.running_mean");
  EXPECT_EQ(sd[4].first, "bn1.running_var");
  EXPECT_EQ(sd[5].first, "bn1.num_batches_tracked");
  EXPECT_EQ(sd[6].first, "layer1.0.conv1.weight");
  EXPECT_EQ(sd.back().first, "fc.bias");
  EXPECT_EQ(sd.size(), 122u);  // torchvision resnet18's state_dict has 122 entries
}

TEST(StateDict, StrictLoadListsEveryProblemAndCopiesNothing) {
  auto model = create_model("resnet18");
  NamedTensors sd = state_dict(*model);
  NamedTensors modified;
  for (const auto& [name, t] : sd) {
    if (name == "bn1.bias") continue;  // missing
    if (name == "fc.weight")
      modified.emplace_back(name, torch::zeros({10, 512}));  // shape mismatch
    else
      modified.emplace_back(name, torch::zeros_like(t));
  }
  modified.emplace_back("extra.weight", torch::zeros({1}));  // unexpected
  try {
    load_state_dict(*model, modified, /*strict=*/true);
    FAIL() << "strict load accepted a mismatching state dict";
  } catch (const StateDictMismatch& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing key: bn1.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected key: extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("shape mismatch: fc.weight"), std::string::npos) << msg;
  }
  EXPECT_GT(model->named_parameters()["conv1.weight"].abs().sum().item<double>(), 0.0);  // untouched

  const LoadReport report = load_state_dict(*model, modified, /*strict=*/false);
  EXPECT_EQ(report.missing.size(), 1u);
  EXPECT_EQ(report.unexpected.size(), 1u);
  EXPECT_EQ(report.mismatched.size(), 1u);
  EXPECT_EQ(model->named_parameters()["conv1.weight"].abs().sum().item<double>(), 0.0);  // loaded
}

TEST(StateDict, ConvertsDtypeOnLoad) {
  auto a = create_model("resnet18");
  auto b = create_model("resnet18");
  NamedTensors half;
  for (const auto& [name, t] : state_dict(*a))
    half.emplace_back(name, t.is_floating_point() ? t.to(torch::kFloat16) : t);
  load_state_dict(*b, half);
  EXPECT_TRUE(
      torch::allclose(b->named_parameters()["fc.weight"], a->named_parameters()["fc.weight"], 1e-3, 1e-3));
  EXPECT_EQ(b->named_parameters()["fc.weight"].scalar_type(), torch::kFloat32);
}

}  // namespace convnets
