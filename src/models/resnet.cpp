#include "models/resnet.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

namespace convnets {
namespace {

// Projection shortcut when the shape changes; registered as torchvision's `downsample` Sequential.
template <typename Block>
void make_downsample(Block& block, int64_t in, int64_t out, int64_t stride, const BatchNormConfig& bn) {
  if (stride == 1 && in == out) return;
  block.down_conv = make_conv(in, out, 1, stride);
  block.down_bn = make_batch_norm(out, bn);
  torch::nn::Sequential downsample(block.down_conv, block.down_bn);
  block.register_module("downsample", downsample);
}

torch::Tensor shortcut(torch::nn::Conv2d& conv, BatchNorm& bn, const torch::Tensor& x) {
  if (conv.is_empty()) return x;
  return bn->forward(conv->forward(x));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t width, int64_t stride, const BatchNormConfig& bn) {
  conv1 = register_module("conv1", make_conv(in, width, 3, stride));
  bn1 = register_module("bn1", make_batch_norm(width, bn));
  conv2 = register_module("conv2", make_conv(width, width, 3));
  bn2 = register_module("bn2", make_batch_norm(width, bn));
  make_downsample(*this, in, width * kExpansion, stride, bn);
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  torch::Tensor out = bn1->forward(conv1->forward(x)).relu_();
  out = bn2->forward(conv2->forward(out));
  out += shortcut(down_conv, down_bn, x);
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t in, int64_t width, int64_t stride, const BatchNormConfig& bn) {
  conv1 = register_module("conv1", make_conv(in, width, 1));
  bn1 = register_module("bn1", make_batch_norm(width, bn));
  conv2 = register_module("conv2", make_conv(width, width, 3, stride));  // v1.5: stride on the 3x3
  bn2 = register_module("bn2", make_batch_norm(width, bn));
  conv3 = register_module("conv3", make_conv(width, width * kExpansion, 1));
  bn3 = register_module("bn3", make_batch_norm(width * kExpansion, bn));
  make_downsample(*this, in, width * kExpansion, stride, bn);
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  torch::Tensor out = bn1->forward(conv1->forward(x)).relu_();
  out = bn2->forward(conv2->forward(out)).relu_();
  out = bn3->forward(conv3->forward(out));
  out += shortcut(down_conv, down_bn, x);
  return out.relu_();
}

ResNetImpl::ResNetImpl(const ResNetOptions& options) : ConvNetImpl("ResNet"), options_(options) {
  const BatchNormConfig bn{options.bn_momentum(), options.bn_eps()};
  const int64_t expansion = options.bottleneck() ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  if (options.blocks_per_stage().size() != 4) throw std::invalid_argument("ResNet: expected 4 stages");

  conv1 = register_module(
      "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", make_batch_norm(64, bn));
  stages_.push_back({"stem", {conv1.ptr(), bn1.ptr()}, [this](const torch::Tensor& x) {
                       auto y = bn1->forward(conv1->forward(x)).relu_();
                       return torch::max_pool2d(y, 3, 2, 1);
                     }});

  int64_t in = 64;
  for (size_t s = 0; s < 4; ++s) {
    const int64_t width = int64_t{64} << s;
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < options.blocks_per_stage()[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      if (options.bottleneck()) {
        layer->push_back(Bottleneck(in, width, stride, bn));
      } else {
        layer->push_back(BasicBlock(in, width, stride, bn));
      }
      in = width * expansion;
    }
    const std::string name = "layer" + std::to_string(s + 1);
    layers.push_back(register_module(name, layer));
    stages_.push_back(
        {name, {layer.ptr()}, [layer](const torch::Tensor& x) mutable { return layer->forward(x); }});
  }

  fc = register_module("fc", torch::nn::Linear(512 * expansion, options.num_classes()));
  stages_.push_back({"head", {fc.ptr()}, [this](const torch::Tensor& x) {
                       auto pooled = x.mean({2, 3});  // adaptive average pool to 1x1, flattened
                       return fc->forward(pooled);
                     }});
  reset_parameters();
}

void ResNetImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const FanMode mode = options_.init_mode();
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      variance_scaling_truncated_(conv->weight, 2.0, tf_fan(conv->weight, conv->options.groups(), mode));
    } else if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) {
      bn->reset_parameters();  // gamma 1, beta 0, running mean 0, running var 1
    }
  }
  variance_scaling_truncated_(fc->weight, 2.0, tf_fan(fc->weight, 1, mode));
  fc->bias.zero_();
  if (options_.zero_init_residual()) {
    for (auto& layer : layers) {
      for (auto& block : *layer) {
        if (auto* b = block.ptr()->as<BottleneckImpl>()) b->last_bn()->weight.zero_();
        if (auto* b = block.ptr()->as<BasicBlockImpl>()) b->last_bn()->weight.zero_();
      }
    }
  }
}

}  // namespace convnets
