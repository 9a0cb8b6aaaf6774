// Weight initializers of the TF recipes (variance scaling on the TF kernel layout).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace convnets {

enum class FanMode { kFanIn, kFanOut };

FanMode parse_fan_mode(const std::string& name);  // "fan_in" | "fan_out"
std::string to_string(FanMode mode);

// TF's truncated normal: N(0, std) restricted to [-2 std, 2 std] (inverse-CDF sampling, no rejection loop).
void truncated_normal_(torch::Tensor& tensor, double std);

// Fans of a PyTorch conv weight [C_out, C_in/groups, kh, kw] computed as TF computes them on its kernel
// layout: regular conv: fan_in = kh*kw*C_in, fan_out = kh*kw*C_out; depthwise (groups == C_in == C_out, TF
// kernel (k,k,C,1)): fan_in = k*k*C, fan_out = k*k. Linear weight [out, in]: fan_in = in, fan_out = out.
int64_t tf_fan(const torch::Tensor& weight, int64_t groups, FanMode mode);

// tf.keras VarianceScaling(scale, mode, distribution="truncated_normal"):
// sigma = sqrt(scale / fan) / 0.87962566103423978, truncated at +-2 sigma (the constant restores the
// variance).
void variance_scaling_truncated_(torch::Tensor& weight, double scale, int64_t fan);

}  // namespace convnets
