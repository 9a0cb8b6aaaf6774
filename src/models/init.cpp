#include "models/init.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <stdexcept>

namespace convnets {

FanMode parse_fan_mode(const std::string& name) {
  if (name == "fan_in") return FanMode::kFanIn;
  if (name == "fan_out") return FanMode::kFanOut;
  throw std::invalid_argument("init mode '" + name + "' is not one of: fan_in, fan_out");
}

std::string to_string(FanMode mode) {
  return mode == FanMode::kFanIn ? "fan_in" : "fan_out";
}

void truncated_normal_(torch::Tensor& tensor, double std) {
  torch::NoGradGuard no_grad;
  // Uniform in [cdf(-2), cdf(2)] mapped through the inverse normal CDF, as torch.nn.init.trunc_normal_ does.
  const double lo = 0.5 * (1.0 + std::erf(-2.0 / std::sqrt(2.0)));
  const double hi = 0.5 * (1.0 + std::erf(2.0 / std::sqrt(2.0)));
  tensor.uniform_(2 * lo - 1, 2 * hi - 1);
  tensor.erfinv_();
  tensor.mul_(std * std::sqrt(2.0));
  tensor.clamp_(-2 * std, 2 * std);
}

int64_t tf_fan(const torch::Tensor& weight, int64_t groups, FanMode mode) {
  if (weight.dim() == 2) return mode == FanMode::kFanIn ? weight.size(1) : weight.size(0);
  if (weight.dim() != 4) throw std::invalid_argument("tf_fan: expected a 2-D or 4-D weight");
  const int64_t receptive = weight.size(2) * weight.size(3);
  const int64_t out = weight.size(0);
  const int64_t in = weight.size(1) * groups;
  const bool depthwise = groups > 1 && groups == out && groups == in;
  if (mode == FanMode::kFanIn) return receptive * in;
  return depthwise ? receptive : receptive * out;
}

void variance_scaling_truncated_(torch::Tensor& weight, double scale, int64_t fan) {
  truncated_normal_(weight, std::sqrt(scale / static_cast<double>(fan)) / 0.87962566103423978);
}

}  // namespace convnets
