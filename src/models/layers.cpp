#include "models/layers.h"

#include <torch/nn/functional/activation.h>

#include "util/mac_counter.h"

namespace convnets {

torch::Tensor conv_forward(torch::nn::Conv2d& conv, const torch::Tensor& x) {
  torch::Tensor y = conv->forward(x);
  const auto& w = conv->weight;  // [C_out, C_in/groups, kh, kw]
  MacCounter::add(y.numel() * w.size(1) * w.size(2) * w.size(3));
  return y;
}

torch::Tensor linear_forward(torch::nn::Linear& linear, const torch::Tensor& x) {
  torch::Tensor y = linear->forward(x);
  MacCounter::add(y.numel() * linear->weight.size(1));
  return y;
}

torch::nn::BatchNorm2d make_batch_norm(int64_t channels, const BatchNormConfig& bn) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).momentum(bn.momentum).eps(bn.eps));
}

namespace {
BatchNormHook& batch_norm_hook() {
  static BatchNormHook hook;  // set between runs, read by forwards: no concurrent writers
  return hook;
}
}  // namespace

torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  const BatchNormHook& hook = batch_norm_hook();
  return hook ? hook(bn, x) : bn.forward(x);
}

BatchNormHook set_batch_norm_hook(BatchNormHook hook) {
  std::swap(batch_norm_hook(), hook);
  return hook;
}

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                            bool bias) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                               .stride(stride)
                               .padding((kernel - 1) / 2)
                               .groups(groups)
                               .bias(bias));
}

ConvNormActImpl::ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                 Activation act, const BatchNormConfig& bn_config)
    : act_(act) {
  conv = register_module("0", make_conv(in, out, kernel, stride, groups));
  bn = register_module("1", make_batch_norm(out, bn_config));
}

torch::Tensor ConvNormActImpl::forward(torch::Tensor x) {
  x = batch_norm(*bn, conv_forward(conv, x));
  switch (act_) {
    case Activation::kReLU:
      return x.relu_();
    case Activation::kSiLU:
      return torch::silu_(x);
    case Activation::kNone:
      break;
  }
  return x;
}

torch::Tensor ConvNetImpl::forward(torch::Tensor x) {
  for (const auto& stage : stages_) x = stage.forward(x);
  return x;
}

}  // namespace convnets
