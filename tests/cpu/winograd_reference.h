// Winograd F(4x4, 3x3) written out independently of cpu/winograd_conv.cpp, in float64, for the tests: the
// transform matrices (interpolation points 0, 1, -1, 1/2, -2 and infinity), the magnitudes behind the
// worst-case bound, and the error ratio against a direct convolution that follows from a rounding-error model
// of both computations.
#pragma once
#include <torch/torch.h>

#include <cmath>

namespace convnets::testing {

// B^T (6x6), G (6x3), A^T (4x6).
inline const torch::Tensor& winograd_matrix(const char* which) {
  static const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  static const torch::Tensor bt =
      torch::tensor({1., -1.5, -2., 1.5, 1., 0., 0., -1., .5,  2.5, 1., 0., 0., 1., -2.5, .5,  1.,  0.,
                     0., -2.,  -1., 2.,  1., 0., 0., .5,  -1., -.5, 1., 0., 0., 1., -1.5, -2., 1.5, 1.},
                    opts)
          .reshape({6, 6});
  static const torch::Tensor g =
      torch::tensor({1., 0., 0., 1. / 3, 1. / 3, 1. / 3, -1. / 3, 1. / 3, -1. / 3, -16. / 15, -8. / 15,
                     -4. / 15, 1. / 15, -2. / 15, 4. / 15, 0., 0., 1.},
                    opts)
          .reshape({6, 3});
  static const torch::Tensor at = torch::tensor({1., 1., 1., 1.,  1., 0., 0., 1., -1., .5,   -2., 0.,
                                                 0., 1., 1., .25, 4., 0., 0., 1., -1., .125, -8., 1.},
                                                opts)
                                      .reshape({4, 6});
  return which[0] == 'b' ? bt : which[0] == 'g' ? g : at;
}

// The 6x6 input tiles of `x` [N, C, H, W] (padding 1, then zeros to whole tiles): [N, C, tiles_h, tiles_w, 6,
// 6].
inline torch::Tensor winograd_tiles(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3), th = (h + 3) / 4, tw = (w + 3) / 4;
  return torch::constant_pad_nd(x, {1, tw * 4 + 1 - w, 1, th * 4 + 1 - h}).unfold(2, 6, 4).unfold(3, 6, 4);
}

// [N, K, th, tw, 4, 4] output tiles back to [N, K, H, W].
inline torch::Tensor winograd_untile(const torch::Tensor& y, int64_t h, int64_t w) {
  return y.permute({0, 1, 2, 4, 3, 5})
      .reshape({y.size(0), y.size(1), y.size(2) * 4, y.size(3) * 4})
      .narrow(2, 0, h)
      .narrow(3, 0, w);
}

// The Winograd computation on absolute values, in float64: [N, K, H, W] magnitudes of every output's terms.
inline torch::Tensor winograd_magnitudes(const torch::Tensor& x, const torch::Tensor& w) {
  const torch::Tensor bt = winograd_matrix("bt").abs(), g = winograd_matrix("g").abs(),
                      at = winograd_matrix("at").abs();
  const torch::Tensor v = torch::einsum("ia,nctuab,jb->nctuij", {bt, winograd_tiles(x.abs()), bt});
  const torch::Tensor u = torch::einsum("ia,kcab,jb->kcij", {g, w.abs(), g});
  const torch::Tensor m = torch::einsum("nctuij,kcij->nktuij", {v, u});
  return winograd_untile(torch::einsum("ia,nktuab,jb->nktuij", {at, m, at}), x.size(2), x.size(3));
}

// How much more float32 rounding error Winograd F(4x4, 3x3) makes than a direct 3x3 convolution on `x`
// [N, C, H, W] with `w` [K, C, 3, 3] (both float64 holding float32 values), from the standard first-order
// model: every rounded result r carries an independent error of variance (u r)^2 / 3 (u = 2^-24), and errors
// propagate linearly. Winograd: the input transform in two passes (rows, columns), the weights transformed
// exactly and rounded once, the products of each tile position accumulated over the channels by fused
// multiply-adds, the output transform in two passes. Direct: each of the 9 kernel positions accumulated over
// the channels by fused multiply-adds, then the 9 sums added (this forecasts a direct float32 convolution's
// measured error within a few percent). The ratio of the two forecasts' root-mean-square errors over all
// outputs (~5.8 on a 64-channel post-ReLU layer with He-scaled weights).
inline double winograd_derived_error_ratio(const torch::Tensor& x, const torch::Tensor& w) {
  const double q = std::ldexp(1.0, -48) / 3;  // u^2 / 3
  const torch::Tensor &bt = winograd_matrix("bt"), &g = winograd_matrix("g"), &at = winograd_matrix("at");
  const torch::Tensor t1 = torch::einsum("ia,nctuab->nctuib", {bt, winograd_tiles(x)});
  const torch::Tensor v = torch::einsum("nctuib,jb->nctuij", {t1, bt});
  const torch::Tensor var_v =
      torch::einsum("nctuib,jb->nctuij", {q * t1.square(), bt.square()}) + q * v.square();
  const torch::Tensor u = torch::einsum("ia,kcab,jb->kcij", {g, w, g});
  const torch::Tensor partial = torch::einsum("nctuij,kcij->nktucij", {v, u}).cumsum(4);
  const torch::Tensor m = partial.select(4, -1);
  const torch::Tensor var_m = q * partial.square().sum(4) +
                              torch::einsum("nctuij,kcij->nktuij", {var_v, u.square()}) +
                              torch::einsum("nctuij,kcij->nktuij", {v.square(), q * u.square()});
  const torch::Tensor t2 = torch::einsum("ia,nktuab->nktuib", {at, m});
  const torch::Tensor var_t2 = torch::einsum("ia,nktuab->nktuib", {at.square(), var_m}) + q * t2.square();
  const torch::Tensor y = torch::einsum("nktuib,jb->nktuij", {t2, at});
  const torch::Tensor var_y = torch::einsum("nktuib,jb->nktuij", {var_t2, at.square()}) + q * y.square();
  const double winograd = winograd_untile(var_y, x.size(2), x.size(3)).sum().item<double>();

  const int64_t n = x.size(0), c = x.size(1), k = w.size(0);
  const torch::Tensor cols =
      torch::nn::functional::unfold(x, torch::nn::functional::UnfoldFuncOptions(3).padding(1))
          .view({n, c, 9, -1});
  const torch::Tensor products = torch::einsum("ncpl,kcp->nkpcl", {cols, w.reshape({k, c, 9})});
  const torch::Tensor per_position = products.cumsum(3);  // [N, K, 9, C, L]: over the channels
  const torch::Tensor over_positions = per_position.select(3, -1).cumsum(2);
  const double direct =
      q * (per_position.square().sum().item<double>() + over_positions.square().sum().item<double>());
  return std::sqrt(winograd / direct);
}

}  // namespace convnets::testing
