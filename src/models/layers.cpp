#include "models/layers.h"

#include <torch/nn/functional/activation.h>

namespace convnets {

torch::Tensor BatchNormImpl::forward(const torch::Tensor& x) {
  if (statistics_ && is_training()) return statistics_->forward(*this, x);
  return torch::nn::BatchNorm2dImpl::forward(x);
}

BatchNorm make_batch_norm(int64_t channels, const BatchNormConfig& bn) {
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

torch::Tensor ConvNormActImpl::forward(torch::Tensor x) {
  return activate_(bn->forward(conv->forward(x)), act_);
}

torch::Tensor ConvNetImpl::forward(torch::Tensor x) {
  for (const auto& stage : stages_) x = stage.forward(x);
  return x;
}

}  // namespace convnets
