#include "models/layers.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>

#include <cmath>

#include "models/inference_graph.h"
#include "models/qat.h"

namespace convnets {

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
  if (statistics_ && is_training()) return statistics_->forward(*this, x);
  return torch::nn::BatchNorm2dImpl::forward(x);
}

BatchNorm make_batch_norm(int64_t channels, const BatchNormSettings& bn) {
  return BatchNorm(torch::nn::BatchNorm2dOptions(channels).momentum(bn.momentum).eps(bn.eps));
}

int64_t set_batch_statistics(torch::nn::Module& model, const std::shared_ptr<BatchStatistics>& statistics) {
  int64_t n = 0;
  for (const auto& m : model.modules()) {
    if (auto* bn = m->as<BatchNormImpl>()) {
      bn->set_batch_statistics(statistics);
      ++n;
    }
  }
  return n;
}

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                            bool bias, Padding padding) {
  const int64_t pad = padding == Padding::kSame && stride > 1 ? 0 : (kernel - 1) / 2;
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(pad).groups(groups).bias(bias));
}

std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride) {
  // TensorFlow: out = ceil(in / stride); total = max((out - 1) * stride + kernel - in, 0), the odd one after.
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - in, 0);
  return {total / 2, total - total / 2};
}

torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const auto [top, bottom] = same_padding(x.size(2), kernel, stride);
  const auto [left, right] = same_padding(x.size(3), kernel, stride);
  if (top + bottom == 0 && left + right == 0) return x;
  return torch::constant_pad_nd(x, {left, right, top, bottom});
}

torch::Tensor activate_(torch::Tensor x, Activation act) {
  switch (act) {
    case Activation::kReLU:
      return x.relu_();
    case Activation::kSiLU:
      return torch::silu_(x);
    case Activation::kSigmoid:
      return x.sigmoid_();
    case Activation::kNone:
      break;
  }
  return x;
}

torch::Tensor ConvBnAct::forward(const torch::Tensor& x) const {
  const torch::Tensor in =
      same_padding ? pad_same(x, conv->options.kernel_size()->at(0), conv->options.stride()->at(0)) : x;
  return activate_(bn.ptr()->forward(conv.ptr()->forward(in)), act);
}

ConvBnAct register_conv_bn_act(torch::nn::Module& parent, const std::string& conv_name,
                               const std::string& bn_name, int64_t in, int64_t out, int64_t kernel,
                               int64_t stride, int64_t groups, Activation act, const BatchNormSettings& bn,
                               Padding padding) {
  ConvBnAct u;
  u.conv = parent.register_module(conv_name, make_conv(in, out, kernel, stride, groups, false, padding));
  u.bn = parent.register_module(bn_name, make_batch_norm(out, bn));
  u.act = act;
  u.same_padding = padding == Padding::kSame && stride > 1;
  return u;
}

ConvNormActImpl::ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                 Activation act, const BatchNormSettings& bn, Padding padding)
    : unit(register_conv_bn_act(*this, "0", "1", in, out, kernel, stride, groups, act, bn, padding)) {}

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t channels, int64_t squeeze_channels, Activation act,
                                             const std::string& reduce_name, const std::string& expand_name)
    : act_(act), reduce_name_(reduce_name), expand_name_(expand_name) {
  fc1 = register_module(reduce_name, make_conv(channels, squeeze_channels, 1, 1, 1, /*bias=*/true));
  fc2 = register_module(expand_name, make_conv(squeeze_channels, channels, 1, 1, 1, /*bias=*/true));
}

torch::Tensor SqueezeExcitationImpl::forward(torch::Tensor x) {
  torch::Tensor scale = x.mean({2, 3}, /*keepdim=*/true);
  scale = activate_(fc1->forward(scale), act_);
  scale = fc2->forward(scale).sigmoid_();
  return scale * x;
}

int SqueezeExcitationImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  int gate = b.global_avg_pool(input, name + ".avgpool");
  gate = b.conv(*fc1, nullptr, gate, act_, name + "." + reduce_name_);
  gate = b.conv(*fc2, nullptr, gate, Activation::kSigmoid, name + "." + expand_name_);
  return b.mul(input, gate, name + ".scale");
}

torch::Tensor stochastic_depth(const torch::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  // Same op sequence as torchvision.ops.stochastic_depth, so a shared seed draws the same mask.
  const double survival = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  torch::Tensor noise = torch::empty(shape, x.options()).bernoulli_(survival);
  if (survival > 0.0) noise.div_(survival);
  return x * noise;
}

int64_t make_divisible(double v, int64_t divisor, double round_limit) {
  int64_t rounded = std::max<int64_t>(
      divisor, static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor);
  if (static_cast<double>(rounded) < round_limit * v) rounded += divisor;
  return rounded;
}

torch::Tensor ConvNetImpl::forward(torch::Tensor x) {
  if (qat_) return qat_->forward(x, is_training());
  for (const auto& stage : stages_) x = stage.forward(x);
  return x;
}

}  // namespace convnets
