// Winograd F(4x4, 3x3) against the float64 convolution, within a bound derived from floating-point error
// analysis: every output is a sum of products through the transforms, so its float32 error is at most
// gamma_n = n u / (1 - n u) (u = 2^-24) times the same computation on absolute values (|B^T| |d| |B|, |G| |g|
// |G^T|, |A^T| . |A|), n the longest chain of roundings (C products summed, and the transforms' sums). A
// wrong coefficient, tile offset or edge gives errors of the order of the outputs themselves, far outside it.
#include "cpu/winograd_conv.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "cpu/winograd_error_ratio.h"
#include "cpu/winograd_reference.h"
#include "test_support.h"

namespace convnets {
namespace {

torch::Tensor apply(const torch::Tensor& x, Activation act) {
  switch (act) {
    case Activation::kReLU:
      return torch::relu(x);
    case Activation::kSiLU:
      return torch::silu(x);
    case Activation::kSigmoid:
      return torch::sigmoid(x);
    case Activation::kNone:
      break;
  }
  return x;
}

struct Case {
  int64_t n, c, k, h, w;
  Activation act;
};

class WinogradConvCases : public ::testing::TestWithParam<Case> {};

TEST_P(WinogradConvCases, GivesTheFloat64ConvolutionWithinTheDerivedBound) {
  const Case t = GetParam();
  torch::manual_seed(3);
  // Post-ReLU-like inputs (a previous layer's), He-scaled weights, a bias of the outputs' order.
  const torch::Tensor x = torch::relu(torch::randn({t.n, t.c, t.h, t.w}, torch::kDouble));
  const torch::Tensor w = torch::randn({t.k, t.c, 3, 3}, torch::kDouble) * std::sqrt(2.0 / (9.0 * t.c));
  const torch::Tensor b = torch::randn({t.k}, torch::kDouble) * 0.5;
  const torch::Tensor x32 = x.to(torch::kFloat), w32 = w.to(torch::kFloat), b32 = b.to(torch::kFloat);
  // The exact reference: the float64 convolution of the float32-rounded operands.
  const torch::Tensor pre =
      torch::conv2d(x32.to(torch::kDouble), w32.to(torch::kDouble), b32.to(torch::kDouble), 1, 1);
  const torch::Tensor expected = apply(pre, t.act);

  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  WinogradConv conv(w32, b32, t.act, t.n, t.h, t.w, engine, stream);
  const torch::Tensor src = x32.permute({0, 2, 3, 1}).contiguous();
  torch::Tensor dst = torch::full({t.n, t.h, t.w, t.k}, std::nanf(""), torch::kFloat);
  torch::Tensor work = torch::empty({conv.work_floats()}, torch::kFloat);
  torch::Tensor scratchpad = torch::empty({std::max<int64_t>(conv.scratchpad_bytes(), 1)}, torch::kUInt8);
  conv.execute(src.data_ptr<float>(), dst.data_ptr<float>(), work.data_ptr<float>(), scratchpad.data_ptr(),
               stream);
  const torch::Tensor got = dst.permute({0, 3, 1, 2}).to(torch::kDouble);
  ASSERT_TRUE(torch::isfinite(got).all().item<bool>()) << "every output written";

  const double u = std::ldexp(1.0, -24), chain = static_cast<double>(t.c) + 24;
  const double gamma = chain * u / (1 - chain * u);
  // The activations are 1-Lipschitz (sigmoid's derivative is at most 1/4, SiLU's 1.1); their own rounding
  // (exp, division) adds a few units in the last place of the result.
  const double lipschitz = t.act == Activation::kSiLU ? 1.1 : 1.0;
  const torch::Tensor bound =
      lipschitz * gamma *
          (testing::winograd_magnitudes(x32.to(torch::kDouble), w32.to(torch::kDouble)) +
           b32.to(torch::kDouble).abs().view({1, -1, 1, 1})) +
      8 * u * expected.abs();
  const torch::Tensor excess = (got - expected).abs() - bound;
  EXPECT_LE(excess.max().item<double>(), 0)
      << "worst error beyond the bound at " << excess.argmax().item<int64_t>();
  // The bound can fail: it is a few thousandths of the outputs (the transforms' terms are ~1000x the sums
  // they cancel to), and a tile read one column off (an offset bug) lands far outside it.
  EXPECT_LT(bound.max().item<double>(), 1e-2 * pre.abs().max().item<double>());
  const torch::Tensor shifted = apply(
      torch::conv2d(x32.to(torch::kDouble).roll(1, 3), w32.to(torch::kDouble), b32.to(torch::kDouble), 1, 1),
      t.act);
  EXPECT_GT(((shifted - expected).abs() - bound).max().item<double>(),
            0.1 * expected.abs().max().item<double>());
}

INSTANTIATE_TEST_SUITE_P(Shapes, WinogradConvCases,
                         ::testing::Values(Case{2, 16, 24, 13, 9, Activation::kReLU},  // partial edge tiles
                                           Case{1, 64, 64, 8, 8, Activation::kNone},   // whole tiles
                                           Case{3, 8, 16, 5, 6, Activation::kSiLU},
                                           Case{1, 32, 8, 4, 7, Activation::kSigmoid},
                                           Case{4, 64, 128, 17, 17, Activation::kReLU}),  // two chunks
                         [](const ::testing::TestParamInfo<Case>& info) {
                           const Case& t = info.param;
                           return "n" + std::to_string(t.n) + "_c" + std::to_string(t.c) + "_k" +
                                  std::to_string(t.k) + "_" + std::to_string(t.h) + "x" + std::to_string(t.w);
                         });

// The plan-level bounds take Winograd's error ratio from the rounding-error model
// (cpu/winograd_error_ratio.h), not from this implementation; here the implementation's own ratio, measured
// against float64 beside a direct float32 convolution, must stay near the model's. A wrong transform
// coefficient makes errors of the order of the outputs (a ratio of thousands); a kernel that rounds more than
// the model allows shows as well.
TEST(WinogradConv, MeasuredErrorRatioIsNearTheDerivedOne) {
  const testing::WinogradErrorLayer l = testing::winograd_error_layer();
  const torch::Tensor x32 = l.x.to(torch::kFloat), w32 = l.w.to(torch::kFloat);
  const int64_t n = x32.size(0), c = x32.size(1), s = x32.size(2);
  const torch::Tensor exact = torch::conv2d(l.x, l.w, {}, 1, 1);
  const torch::Tensor direct = torch::conv2d(x32, w32, {}, 1, 1);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  WinogradConv conv(w32, torch::zeros({c}), Activation::kNone, n, s, s, engine, stream);
  const torch::Tensor src = x32.permute({0, 2, 3, 1}).contiguous();
  torch::Tensor dst = torch::empty({n, s, s, c});
  torch::Tensor work = torch::empty({conv.work_floats()});
  torch::Tensor pad = torch::empty({std::max<int64_t>(conv.scratchpad_bytes(), 1)}, torch::kUInt8);
  conv.execute(src.data_ptr<float>(), dst.data_ptr<float>(), work.data_ptr<float>(), pad.data_ptr(), stream);
  const double measured =
      testing::rel_error(dst.permute({0, 3, 1, 2}), exact) / testing::rel_error(direct, exact);
  const double derived = testing::winograd_derived_error_ratio(l.x, l.w);
  std::printf("Winograd / direct float32 error: measured %.2f, derived %.2f\n", measured, derived);
  // The model leaves out how each kernel splits its sums (vector lanes, blocks): within 2x either way.
  EXPECT_GT(measured, derived / 2);
  EXPECT_LT(measured, derived * 2);
}

TEST(WinogradConv, RefusesWhatItCannotRun) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  EXPECT_FALSE(WinogradConv::supported(12, 16));
  EXPECT_TRUE(WinogradConv::supported(64, 128));
  EXPECT_THROW(WinogradConv(torch::zeros({8, 12, 3, 3}), torch::zeros({8}), Activation::kNone, 1, 8, 8,
                            engine, stream),
               std::invalid_argument);
  EXPECT_THROW(
      WinogradConv(torch::zeros({8, 8, 5, 5}), torch::zeros({8}), Activation::kNone, 1, 8, 8, engine, stream),
      std::invalid_argument);
}

}  // namespace
}  // namespace convnets
