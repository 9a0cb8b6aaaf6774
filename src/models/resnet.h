// ResNet v1.5 (torchvision layout: the stride-2 sits on the 3x3 conv and on the projection shortcut).
#pragma once
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
  TORCH_ARG(double, bn_momentum) = 0.1;
  TORCH_ARG(double, bn_eps) = 1e-5;
};

// resnet18/34 block: 3x3 -> 3x3.
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in, int64_t width, int64_t stride, const BatchNormConfig& bn);
  torch::Tensor forward(torch::Tensor x);
  BatchNorm last_bn() const { return bn2; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr};
  torch::nn::Conv2d down_conv{nullptr};  // registered as downsample.0
  BatchNorm down_bn{nullptr};            // registered as downsample.1
};
TORCH_MODULE(BasicBlock);

// resnet50/101/152 block: 1x1 -> 3x3 (stride) -> 1x1 (x4 channels).
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t width, int64_t stride, const BatchNormConfig& bn);
  torch::Tensor forward(torch::Tensor x);
  BatchNorm last_bn() const { return bn3; }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Conv2d down_conv{nullptr};
  BatchNorm down_bn{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public ConvNetImpl {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  void reset_parameters();
  const ResNetOptions& options() const { return options_; }

  torch::nn::Conv2d conv1{nullptr};
  BatchNorm bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  // layer1..layer4
  torch::nn::Linear fc{nullptr};

 private:
  ResNetOptions options_;
};
TORCH_MODULE(ResNet);

}  // namespace convnets
