// ResNet v1.5 (torchvision layout: the stride-2 sits on the 3x3 conv and on the projection shortcut), and
// the same network with grouped 3x3 convolutions (ResNeXt) and squeeze-excitation (SE-ResNeXt, timm's
// layout: SE on the bn3 output, before the residual add).
#pragma once
#include "models/inference_graph.h"
#include "models/init.h"
#include "models/layers.h"

namespace convnets {

struct ResNetOptions {
  ResNetOptions(std::vector<int64_t> blocks_per_stage, bool bottleneck)
      : blocks_per_stage_(std::move(blocks_per_stage)), bottleneck_(bottleneck) {}
  TORCH_ARG(std::vector<int64_t>, blocks_per_stage);
  TORCH_ARG(bool, bottleneck);
  TORCH_ARG(int64_t, num_classes) = 1000;
  // Zero-init of the last BN gamma of each residual block (off in the RN50 recipe).
  TORCH_ARG(bool, zero_init_residual) = false;
  // Variance-scaling(2.0, truncated normal) fan; the seed scripts pass --weight_init=fan_in.
  TORCH_ARG(FanMode, init_mode) = FanMode::kFanIn;
  TORCH_ARG(BatchNormSettings, batch_norm) = BatchNormSettings{1e-5, 0.1};
  // ResNeXt (bottleneck only): the 3x3 convolution has `groups` groups of `width_per_group` channels per 64
  // planes (torchvision's groups / width_per_group; 1 and 64 are ResNet).
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, width_per_group) = 64;
  // Squeeze-excitation in every bottleneck: hidden width make_divisible(C / 16, 8) (timm, TF1), or a fixed
  // `se_width` for every stage (NVIDIA's PyTorch SE-ResNeXt uses 16).
  TORCH_ARG(bool, squeeze_excitation) = false;
  TORCH_ARG(int64_t, se_width) = 0;
};

// resnet18/34 block: 3x3 -> 3x3.
class BasicBlockImpl : public torch::nn::Module, public InferenceBlock {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in, int64_t width, int64_t stride, const BatchNormSettings& bn);
  torch::Tensor forward(torch::Tensor x);
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const override;
  BatchNorm last_bn() const { return bn2; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d down_conv{nullptr};  // registered as downsample.0
  BatchNorm down_bn{nullptr};            // registered as downsample.1
};
TORCH_MODULE(BasicBlock);

// resnet50/101/152 block: 1x1 -> 3x3 (stride; grouped for ResNeXt) -> 1x1 (x4 channels) [-> SE].
class BottleneckImpl : public torch::nn::Module, public InferenceBlock {
 public:
  static constexpr int64_t kExpansion = 4;
  // `planes`: 64, 128, 256, 512 by stage; the 3x3 width is planes * width_per_group / 64 * groups.
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, const BatchNormSettings& bn,
                 const ResNetOptions& o);
  torch::Tensor forward(torch::Tensor x);
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const override;
  BatchNorm last_bn() const { return bn3; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  SqueezeExcitation se{nullptr};  // SE-ResNeXt
  torch::nn::Conv2d down_conv{nullptr};
  BatchNorm down_bn{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public ConvNetImpl {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  void reset_parameters();
  const ResNetOptions& options() const { return options_; }
  void append_inference_ops(GraphBuilder& b) const override;
  int64_t num_classes() const override { return options_.num_classes(); }

  torch::nn::Conv2d conv1{nullptr};
  BatchNorm bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  // layer1..layer4
  torch::nn::Linear fc{nullptr};

 private:
  ResNetOptions options_;
};
TORCH_MODULE(ResNet);

}  // namespace convnets
