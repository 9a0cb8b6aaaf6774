#include "util/weights.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "models/registry.h"
#include "test_support.h"
#include "util/file_io.h"

namespace convnets {

TEST(Weights, SaveAndLoadBothFormatsByContent) {
  auto model = create_model("efficientnet_b0", {.num_classes = 10});
  testing::ScratchDir dir;
  for (const char* name : {"w.pt", "w.safetensors", "w.pth"}) {
    save_weights(dir.file(name), state_dict(*model));
    auto other = create_model("efficientnet_b0", {.num_classes = 10});
    const LoadReport report = load_model_weights(*other, "efficientnet_b0", dir.file(name));
    EXPECT_TRUE(report.clean());
    for (const auto& [key, t] : state_dict(*model)) {
      EXPECT_TRUE(torch::equal(t, other->named_parameters(true).contains(key) ? other->named_parameters()[key]
                                                                              : other->named_buffers()[key]))
          << key;
    }
  }
  EXPECT_THROW(save_weights(dir.file("w.bin"), state_dict(*model)), std::invalid_argument);
}

TEST(Weights, WrongArchitectureIsAClearError) {
  testing::ScratchDir dir;
  save_weights(dir.file("rn18.safetensors"), state_dict(*create_model("resnet18")));
  auto rn34 = create_model("resnet34");
  try {
    load_model_weights(*rn34, "resnet34", dir.file("rn18.safetensors"));
    FAIL();
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("rn18.safetensors"), std::string::npos);
    EXPECT_NE(msg.find("missing key: layer1.2.conv1.weight"), std::string::npos) << msg;
  }
}

TEST(Weights, TruncatedAndForeignFilesAreErrors) {
  testing::ScratchDir dir;
  save_weights(dir.file("w.pt"), state_dict(*create_model("resnet18")));
  const std::string bytes = read_file(dir.file("w.pt"));
  write_file_atomic(dir.file("cut.pt"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(load_weights(dir.file("cut.pt")), std::runtime_error);
  write_file_atomic(dir.file("text.pt"), "hello, I am not a model");
  EXPECT_THROW(load_weights(dir.file("text.pt")), std::runtime_error);
  EXPECT_THROW(load_weights(dir.file("absent.pt")), std::runtime_error);
}

TEST(Weights, DataParallelPrefixIsStripped) {
  const NamedTensors in = {{"module.conv1.weight", torch::zeros({1})}, {"module.fc.bias", torch::zeros({1})}};
  const NamedTensors out = to_native_weights(find_model("resnet18"), in, false, "test").tensors;
  EXPECT_EQ(out[0].first, "conv1.weight");
  EXPECT_EQ(out[1].first, "fc.bias");
}

}  // namespace convnets
