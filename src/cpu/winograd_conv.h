// A 3x3 convolution with stride 1 and padding 1 as Winograd's minimal filtering F(4x4, 3x3), for the oneDNN
// plan (docs/architecture.md, Evaluation and inference): the input cut into overlapping 6x6 tiles (4x4
// outputs each), each transformed (B^T d B), one matrix product per tile position (36) with the transformed
// weights (G g G^T, once) on oneDNN's batched matmul, the products transformed back (A^T M A) with the bias
// and the activation: 36 / (9 x 16) = 1/4 of the direct convolution's multiplications. Activations are
// float32 nhwc; tiles go in chunks whose transformed values stay in the caches.
#pragma once
#include <torch/types.h>

#include <array>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "models/layers.h"

namespace convnets {

// A convolution as WinogradConv::applies sees it.
struct WinogradCase {
  int64_t in_channels = 0, out_channels = 0, kernel = 0, stride = 0, groups = 1;
  std::array<int64_t, 4> padding{};  // top, bottom, left, right
  bool residual = false;             // a residual added before the activation
  Activation activation = Activation::kNone;
  int64_t batch = 0, out_h = 0, out_w = 0;
};

class WinogradConv {
 public:
  // Whether the channel counts suit the transforms (multiples of their vector of 8).
  static bool supported(int64_t in_channels, int64_t out_channels);
  // Tiles of 4x4 outputs a batch of n maps of h x w outputs takes (the last row and column may overhang).
  static int64_t tiles(int64_t n, int64_t h, int64_t w);
  // Where Winograd beats oneDNN's direct kernel (bench/winograd_bench.cpp measures it; the README has the
  // figures): a 3x3 stride-1 convolution with padding 1, no groups, no residual, whose matrix products have
  // rows (tiles) and columns (channels) enough, >= kMinChannels in and out and >= kMinTiles (ResNet-50's 7x7
  // maps at batch 1 have 4, and lose); ReLU or no activation (SiLU's exponentials in the output transform
  // cost more than the products save).
  static constexpr int64_t kMinChannels = 64, kMinTiles = 16;
  static bool applies(const WinogradCase& c);
  // `weight`: float32 [K, C, 3, 3]; `bias`: float32 [K]; input [n, C, h, w] -> [n, K, h, w].
  WinogradConv(const torch::Tensor& weight, const torch::Tensor& bias, Activation act, int64_t n, int64_t h,
               int64_t w, const dnnl::engine& engine, dnnl::stream& stream);
  // Floats of work memory a call needs (one chunk's transformed input and products), and the matmuls'
  // scratchpad.
  int64_t work_floats() const;
  int64_t scratchpad_bytes() const;
  // `src`, `dst`: nhwc; `work`: work_floats(); `scratchpad`: scratchpad_bytes().
  void execute(const float* src, float* dst, float* work, void* scratchpad, dnnl::stream& stream);
  // "F(4x4,3x3), 2 chunks of 113 tiles, matmul gemm:jit:f32"
  std::string info() const;

 private:
  struct Matmul {
    int64_t rows = 0;
    dnnl::matmul primitive;
    dnnl::memory src, dst, scratchpad;
    std::string impl;
  };
  Matmul make_matmul(int64_t rows, const dnnl::engine& engine);

  int64_t c_, k_, h_, w_, tiles_h_, tiles_w_, tiles_, chunk_;
  Activation act_;
  torch::Tensor bias_;
  dnnl::memory weights_;  // transformed, in the layout the matmul picked
  Matmul full_, tail_;    // a chunk of chunk_ tiles, and the last, shorter one (rows 0: none)
};

}  // namespace convnets
