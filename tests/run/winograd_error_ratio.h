// How much more float32 rounding error the oneDNN plan's Winograd F(4x4, 3x3) convolution makes than a direct
// convolution: both against float64 on one realistic layer (64 channels, post-ReLU input, He-scaled weights,
// 16x16 maps), measured on this CPU (~3). A forward's error is, to first order, a sum of its layers'
// rounding errors, each at most this factor larger where a layer runs Winograd, so a bound derived for the
// direct convolutions, times this factor (at least 1), holds for a plan with Winograd layers.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "run/winograd_conv.h"
#include "test_support.h"

namespace convnets::testing {

inline double winograd_error_ratio() {
  static const double ratio = [] {
    torch::manual_seed(11);
    const int64_t n = 2, c = 64, s = 16;
    const torch::Tensor x = torch::relu(torch::randn({n, c, s, s}));
    const torch::Tensor w = torch::randn({c, c, 3, 3}) * std::sqrt(2.0 / (9.0 * c));
    const torch::Tensor b = torch::zeros({c});
    const torch::Tensor exact = torch::conv2d(x.to(torch::kDouble), w.to(torch::kDouble), {}, 1, 1);
    const torch::Tensor direct = torch::conv2d(x, w, {}, 1, 1);
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    WinogradConv conv(w, b, Activation::kNone, n, s, s, engine, stream);
    const torch::Tensor src = x.permute({0, 2, 3, 1}).contiguous();
    torch::Tensor dst = torch::empty({n, s, s, c});
    torch::Tensor work = torch::empty({conv.work_floats()});
    torch::Tensor pad = torch::empty({std::max<int64_t>(conv.scratchpad_bytes(), 1)}, torch::kUInt8);
    conv.execute(src.data_ptr<float>(), dst.data_ptr<float>(), work.data_ptr<float>(), pad.data_ptr(),
                 stream);
    return std::max(1.0, rel_error(dst.permute({0, 3, 1, 2}), exact) / rel_error(direct, exact));
  }();
  return ratio;
}

}  // namespace convnets::testing
