#include "models/resnet.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

namespace convnets {
namespace {

// Projection shortcut when the shape changes; registered as torchvision's `downsample` Sequential.
template <typename Block>
void make_downsample(Block& block, int64_t in, int64_t out, int64_t stride, const BatchNormSettings& bn) {
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

// The projection shortcut's op, or the block's input itself.
template <typename Block>
int shortcut_ops(const Block& block, GraphBuilder& b, int input, const std::string& name) {
  return block.down_conv.is_empty() ? input
                                    : b.conv(*block.down_conv.ptr(), block.down_bn.get(), input,
                                             Activation::kNone, name + ".downsample.0");
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t width, int64_t stride, const BatchNormSettings& bn) {
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

int BasicBlockImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  const int residual = shortcut_ops(*this, b, input, name);
  const int y = b.conv(*conv1, bn1.get(), input, Activation::kReLU, name + ".conv1");
  return b.conv(*conv2, bn2.get(), y, Activation::kReLU, name + ".conv2", residual);
}

BottleneckImpl::BottleneckImpl(int64_t in, int64_t planes, int64_t stride, const BatchNormSettings& bn,
                               const ResNetOptions& o) {
  const int64_t width = planes * o.width_per_group() / 64 * o.groups();
  const int64_t out = planes * kExpansion;
  conv1 = register_module("conv1", make_conv(in, width, 1));
  bn1 = register_module("bn1", make_batch_norm(width, bn));
  conv2 =
      register_module("conv2", make_conv(width, width, 3, stride, o.groups()));  // v1.5: stride on the 3x3
  bn2 = register_module("bn2", make_batch_norm(width, bn));
  conv3 = register_module("conv3", make_conv(width, out, 1));
  bn3 = register_module("bn3", make_batch_norm(out, bn));
  if (o.squeeze_excitation()) {
    const int64_t hidden =
        o.se_width() > 0 ? o.se_width() : make_divisible(static_cast<double>(out) / 16, 8, 0);
    se = register_module("se", SqueezeExcitation(out, hidden, Activation::kReLU));
  }
  make_downsample(*this, in, out, stride, bn);
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  torch::Tensor out = bn1->forward(conv1->forward(x)).relu_();
  out = bn2->forward(conv2->forward(out)).relu_();
  out = bn3->forward(conv3->forward(out));
  if (!se.is_empty()) out = se->forward(out);
  out += shortcut(down_conv, down_bn, x);
  return out.relu_();
}

int BottleneckImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  const int residual = shortcut_ops(*this, b, input, name);
  int y = b.conv(*conv1, bn1.get(), input, Activation::kReLU, name + ".conv1");
  y = b.conv(*conv2, bn2.get(), y, Activation::kReLU, name + ".conv2");
  if (se.is_empty()) return b.conv(*conv3, bn3.get(), y, Activation::kReLU, name + ".conv3", residual);
  y = b.conv(*conv3, bn3.get(), y, Activation::kNone, name + ".conv3");
  y = se->append_inference_ops(b, y, name + ".se");
  return b.add(y, residual, Activation::kReLU, name + ".add");
}

ResNetImpl::ResNetImpl(const ResNetOptions& options) : ConvNetImpl("ResNet"), options_(options) {
  const BatchNormSettings bn = options.batch_norm();
  const int64_t expansion = options.bottleneck() ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  if (options.blocks_per_stage().size() != 4) throw std::invalid_argument("ResNet: expected 4 stages");
  if (!options.bottleneck() &&
      (options.groups() != 1 || options.width_per_group() != 64 || options.squeeze_excitation()))
    throw std::invalid_argument("ResNet: groups, width_per_group and squeeze-excitation need bottlenecks");

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
        layer->push_back(Bottleneck(in, width, stride, bn, options));
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

void ResNetImpl::append_inference_ops(GraphBuilder& b) const {
  int x = b.conv(*conv1, bn1.get(), 0, Activation::kReLU, "conv1");
  x = b.max_pool(x, 3, 2, 1, "maxpool");
  for (size_t s = 0; s < layers.size(); ++s)
    x = append_block_ops(b, layers[s]->children(), x, "layer" + std::to_string(s + 1));
  x = b.global_avg_pool(x, "avgpool");
  b.classifier(*fc, x, "fc");
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
