// C++ -> Python (torch.load weights_only, safetensors, torchvision load_state_dict strict) -> C++, exact.
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>

#include "models/registry.h"
#include "test_support.h"
#include "util/weights.h"

namespace convnets {

class PythonRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonRoundTrip, ExactInBothFormats) {
  const std::string arch = GetParam();
  const std::string python = testing::python_exe();
  const std::string script = testing::tests_source_dir() + "/python/roundtrip_through_python.py";
  testing::ScratchDir dir;
  torch::manual_seed(11);
  auto model = create_model(arch);
  {
    // Make every buffer non-default so that nothing round-trips by accident.
    torch::NoGradGuard no_grad;
    for (auto& b : model->buffers()) b.is_floating_point() ? b.uniform_(0.5, 1.5) : b.fill_(17);
  }
  const NamedTensors original = state_dict(*model);
  save_weights(dir.file("cpp.pt"), original);
  save_weights(dir.file("cpp.safetensors"), original);
  const std::string cmd = python + " " + script + " " + arch + " " + dir.path().string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const char* file : {"python.pt", "python.safetensors"}) {
    const NamedTensors back = load_weights(dir.file(file));
    ASSERT_EQ(back.size(), original.size()) << file;
    std::map<std::string, torch::Tensor> by_name(back.begin(), back.end());
    for (const auto& [name, t] : original) {
      ASSERT_TRUE(by_name.count(name)) << file << ": " << name;
      EXPECT_EQ(by_name[name].scalar_type(), t.scalar_type()) << name;
      EXPECT_TRUE(torch::equal(by_name[name], t)) << file << ": " << name;
    }
  }
}

// One architecture per layout: torchvision's ResNet and EfficientNet (V1, V2), ResNeXt (torchvision's class)
// and SE-ResNeXt (timm's), and timm's EfficientNetV2 layout of the V2-B models.
INSTANTIATE_TEST_SUITE_P(Models, PythonRoundTrip,
                         ::testing::Values("resnet50", "efficientnet_b0", "efficientnet_v2_s",
                                           "resnext50_32x4d", "se_resnext101_32x4d", "efficientnet_v2_b0"),
                         [](const auto& info) { return info.param; });

}  // namespace convnets
