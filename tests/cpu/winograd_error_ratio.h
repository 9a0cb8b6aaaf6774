// How much more float32 rounding error the oneDNN plan's Winograd F(4x4, 3x3) convolutions make than direct
// ones, for the plan-level bounds: derived from the rounding-error model of both computations
// (cpu/winograd_reference.h) on one realistic layer (64 channels, post-ReLU input, He-scaled weights, 16x16
// maps), never measured on the implementation under test. A forward's error is, to first order, a sum of its
// layers' rounding errors, each this factor larger where a layer runs Winograd, so a bound derived for the
// direct convolutions, times this factor (at least 1), holds for a plan with Winograd layers.
// tests/cpu/winograd_conv_test.cpp checks that the implementation's measured ratio stays near this one.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "cpu/winograd_reference.h"

namespace convnets::testing {

// The realistic layer, as float32 values held in float64.
struct WinogradErrorLayer {
  torch::Tensor x, w;
};
inline WinogradErrorLayer winograd_error_layer() {
  torch::manual_seed(11);
  const int64_t n = 1, c = 64, s = 16;
  const torch::Tensor x = torch::relu(torch::randn({n, c, s, s}));
  const torch::Tensor w = torch::randn({c, c, 3, 3}) * std::sqrt(2.0 / (9.0 * c));
  return {x.to(torch::kDouble), w.to(torch::kDouble)};
}

inline double winograd_error_ratio() {
  static const double ratio = [] {
    const WinogradErrorLayer l = winograd_error_layer();
    return std::max(1.0, winograd_derived_error_ratio(l.x, l.w));
  }();
  return ratio;
}

}  // namespace convnets::testing
