#include "cpu/winograd_conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

// The vectors below are inline-only (never passed between functions), so the ABI note GCC gives for 32-byte
// vectors without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace convnets {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

namespace {

// F(4x4, 3x3) from the interpolation points 0, 1, -1, 1/2, -2 and infinity (Toom-Cook): Y = A^T [(G g G^T) .
// (B^T d B)] A is the 3x3 cross-correlation of the 6x6 tile d with g. These points round less than Lavin and
// Gray's 0, +-1, +-2 (docs/architecture.md has the measurement); B^T and A^T hold
// binary fractions only, exact in float32.
constexpr int kTile = 4, kAlpha = 6;
constexpr float kBt[kAlpha][kAlpha] = {{1, -1.5f, -2, 1.5f, 1, 0}, {0, -1, 0.5f, 2.5f, 1, 0},
                                       {0, 1, -2.5f, 0.5f, 1, 0},  {0, -2, -1, 2, 1, 0},
                                       {0, 0.5f, -1, -0.5f, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1}};
constexpr float kAt[kTile][kAlpha] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 0.5f, -2, 0}, {0, 1, 1, 0.25f, 4, 0}, {0, 1, -1, 0.125f, -8, 1}};
constexpr double kG[kAlpha][3] = {{1, 0, 0},
                                  {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                  {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                  {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                  {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                  {0, 0, 1}};
constexpr int64_t kLanes = 8;             // channels per vector (two SSE registers without AVX)
constexpr int64_t kChunkBytes = 2 << 20;  // transformed input + products of one chunk of tiles
constexpr int64_t kMinChunk = 64;         // tiles: rows of each matmul

typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

inline __attribute__((always_inline)) Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline __attribute__((always_inline)) void store(float* p, Vec v) {
  std::memcpy(p, &v, sizeof v);
}

// y[i * sy] = sum_j m[i][j] x[j * sx]: the loops unroll and the zero and unit coefficients fold away.
template <int Rows>
inline __attribute__((always_inline)) void transform_1d(const float (&m)[Rows][kAlpha], const Vec* x, int sx,
                                                        Vec* y, int sy) {
#pragma GCC unroll 6
  for (int i = 0; i < Rows; ++i) {
    Vec acc = {};
    bool first = true;
#pragma GCC unroll 6
    for (int j = 0; j < kAlpha; ++j) {
      if (m[i][j] == 0) continue;
      const Vec term = m[i][j] == 1 ? x[j * sx] : m[i][j] == -1 ? -x[j * sx] : m[i][j] * x[j * sx];
      acc = first ? term : acc + term;
      first = false;
    }
    y[i * sy] = acc;
  }
}

struct Geometry {
  int64_t c, h, w, tiles_h, tiles_w;
  // tile -> (image, first row, first column) of its 4x4 outputs
  void locate(int64_t tile, int64_t& image, int64_t& y, int64_t& x) const {
    const int64_t per_image = tiles_h * tiles_w;
    image = tile / per_image;
    y = (tile % per_image) / tiles_w * kTile;
    x = tile % tiles_w * kTile;
  }
};

// V[(i, j)][r][c] = (B^T d B)[i][j] for the tiles first + [begin, end) of a chunk of `rows`, d read around
// the tile's outputs with a border of one (zeros outside the map). Compiled for AVX2 and for any x86-64.
__attribute__((target_clones("avx2", "default"))) void input_tiles(const float* src, const Geometry& g,
                                                                   int64_t first, int64_t rows, int64_t begin,
                                                                   int64_t end, float* v) {
  Vec d[kAlpha * kAlpha], t[kAlpha * kAlpha], u[kAlpha * kAlpha];
  const Vec zero = {};
  for (int64_t r = begin; r < end; ++r) {
    int64_t image, y0, x0;
    g.locate(first + r, image, y0, x0);
    const bool inside = y0 >= 1 && x0 >= 1 && y0 + kAlpha - 1 <= g.h && x0 + kAlpha - 1 <= g.w;
    for (int64_t c0 = 0; c0 < g.c; c0 += kLanes) {
      for (int y = 0; y < kAlpha; ++y) {
        const int64_t iy = y0 - 1 + y;
        for (int x = 0; x < kAlpha; ++x) {
          const int64_t ix = x0 - 1 + x;
          d[y * kAlpha + x] = inside || (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                                  ? load(src + ((image * g.h + iy) * g.w + ix) * g.c + c0)
                                  : zero;
        }
      }
      for (int x = 0; x < kAlpha; ++x) transform_1d(kBt, d + x, kAlpha, t + x, kAlpha);  // columns: B^T d
      for (int i = 0; i < kAlpha; ++i) transform_1d(kBt, t + i * kAlpha, 1, u + i * kAlpha, 1);  // (B^T d) B
      for (int ij = 0; ij < kAlpha * kAlpha; ++ij) store(v + (ij * rows + r) * g.c + c0, u[ij]);
    }
  }
}

// dst[outputs of tile first + r] = act(A^T P A + bias), P[(i, j)][r][k] the chunk's products; outputs past
// the map's bottom / right edge are dropped.
__attribute__((target_clones("avx2", "default"))) void output_tiles(const float* products, const float* bias,
                                                                    Activation act, const Geometry& g,
                                                                    int64_t first, int64_t rows,
                                                                    int64_t begin, int64_t end, float* dst) {
  Vec p[kAlpha * kAlpha], s[kTile * kAlpha], y[kTile * kTile];
  const Vec zero = {};
  for (int64_t r = begin; r < end; ++r) {
    int64_t image, y0, x0;
    g.locate(first + r, image, y0, x0);
    for (int64_t k0 = 0; k0 < g.c; k0 += kLanes) {
      for (int ij = 0; ij < kAlpha * kAlpha; ++ij) p[ij] = load(products + (ij * rows + r) * g.c + k0);
      for (int x = 0; x < kAlpha; ++x) transform_1d(kAt, p + x, kAlpha, s + x, kAlpha);  // columns: A^T P
      for (int i = 0; i < kTile; ++i) transform_1d(kAt, s + i * kAlpha, 1, y + i * kTile, 1);  // (A^T P) A
      const Vec b = load(bias + k0);
      for (int i = 0; i < kTile && y0 + i < g.h; ++i)
        for (int j = 0; j < kTile && x0 + j < g.w; ++j) {
          Vec o = y[i * kTile + j] + b;
          switch (act) {
            case Activation::kReLU:
              o = o > zero ? o : zero;
              break;
            case Activation::kSiLU:
              for (int64_t q = 0; q < kLanes; ++q) o[q] = o[q] / (1.f + std::exp(-o[q]));
              break;
            case Activation::kSigmoid:
              for (int64_t q = 0; q < kLanes; ++q) o[q] = 1.f / (1.f + std::exp(-o[q]));
              break;
            case Activation::kNone:
              break;
          }
          store(dst + ((image * g.h + y0 + i) * g.w + x0 + j) * g.c + k0, o);
        }
    }
  }
}

torch::Tensor transformed_weights(const torch::Tensor& weight) {
  const torch::Tensor g = torch::from_blob(const_cast<double*>(&kG[0][0]), {kAlpha, 3}, torch::kDouble);
  // U[i][j][c][k] = (G w[k][c] G^T)[i][j], in float64, rounded once.
  return torch::einsum("ia,kcab,jb->ijck", {g, weight.to(torch::kDouble), g})
      .reshape({kAlpha * kAlpha, weight.size(1), weight.size(0)})
      .to(torch::kFloat)
      .contiguous();
}

}  // namespace

WinogradConv::WinogradConv(const torch::Tensor& weight, const torch::Tensor& bias, Activation act, int64_t n,
                           int64_t h, int64_t w, const dnnl::engine& engine, dnnl::stream& stream)
    : c_(weight.size(1)),
      k_(weight.size(0)),
      h_(h),
      w_(w),
      tiles_h_((h + kTile - 1) / kTile),
      tiles_w_((w + kTile - 1) / kTile),
      tiles_(n * tiles_h_ * tiles_w_),
      act_(act),
      bias_(bias.to(torch::kFloat).contiguous()) {
  if (weight.dim() != 4 || weight.size(2) != 3 || weight.size(3) != 3 || bias.numel() != k_ ||
      !supported(c_, k_))
    throw std::invalid_argument(
        "a Winograd convolution takes 3x3 weights [K, C, 3, 3] with K and C multiples of " +
        std::to_string(kLanes) + ", and a bias of K");
  // Chunks of at least kMinChunk tiles whose work memory fits kChunkBytes, all of about the same size.
  const int64_t per_tile = int64_t{kAlpha} * kAlpha * (c_ + k_) * static_cast<int64_t>(sizeof(float));
  const int64_t target = std::min(tiles_, std::max(kMinChunk, kChunkBytes / per_tile));
  const int64_t chunks = (tiles_ + target - 1) / target;
  chunk_ = (tiles_ + chunks - 1) / chunks;
  full_ = make_matmul(chunk_, engine);
  const int64_t tail = tiles_ - (chunks - 1) * chunk_;
  if (tail != chunk_) tail_ = make_matmul(tail, engine);
  const torch::Tensor u = transformed_weights(weight);
  memory user(memory::desc({kAlpha * kAlpha, c_, k_}, DataType::f32, Tag::abc), engine, u.data_ptr());
  dnnl::reorder(user, weights_).execute(stream, user, weights_);
  stream.wait();
}

WinogradConv::Matmul WinogradConv::make_matmul(int64_t rows, const dnnl::engine& engine) {
  const int64_t a2 = kAlpha * kAlpha;
  const memory::desc src({a2, rows, c_}, DataType::f32, Tag::abc),
      dst({a2, rows, k_}, DataType::f32, Tag::abc);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // The first matmul picks the weights' layout; a shorter chunk's reads the same weights.
  const memory::desc weights =
      weights_ ? weights_.get_desc() : memory::desc({a2, c_, k_}, DataType::f32, Tag::any);
  const dnnl::matmul::primitive_desc pd(engine, src, weights, dst, attr);
  if (!weights_) weights_ = memory(pd.weights_desc(), engine);
  Matmul mm;
  mm.rows = rows;
  mm.primitive = dnnl::matmul(pd);
  mm.src = memory(src, engine, nullptr);
  mm.dst = memory(dst, engine, nullptr);
  mm.scratchpad = memory(pd.scratchpad_desc(), engine, nullptr);
  mm.impl = pd.impl_info_str();
  return mm;
}

int64_t WinogradConv::tiles(int64_t n, int64_t h, int64_t w) {
  return n * ((h + kTile - 1) / kTile) * ((w + kTile - 1) / kTile);
}

bool WinogradConv::applies(const WinogradCase& c) {
  return c.kernel == 3 && c.stride == 1 && c.groups == 1 && c.padding == std::array<int64_t, 4>{1, 1, 1, 1} &&
         !c.residual && (c.activation == Activation::kReLU || c.activation == Activation::kNone) &&
         c.in_channels >= kMinChannels && c.out_channels >= kMinChannels &&
         tiles(c.batch, c.out_h, c.out_w) >= kMinTiles && supported(c.in_channels, c.out_channels);
}

bool WinogradConv::supported(int64_t in_channels, int64_t out_channels) {
  return in_channels % kLanes == 0 && out_channels % kLanes == 0;
}

int64_t WinogradConv::work_floats() const {
  return int64_t{kAlpha} * kAlpha * chunk_ * (c_ + k_);
}

int64_t WinogradConv::scratchpad_bytes() const {
  int64_t bytes = static_cast<int64_t>(full_.scratchpad.get_desc().get_size());
  if (tail_.rows > 0) bytes = std::max(bytes, static_cast<int64_t>(tail_.scratchpad.get_desc().get_size()));
  return bytes;
}

void WinogradConv::execute(const float* src, float* dst, float* work, void* scratchpad,
                           dnnl::stream& stream) {
  const Geometry in{c_, h_, w_, tiles_h_, tiles_w_}, out{k_, h_, w_, tiles_h_, tiles_w_};
  const float* bias = bias_.data_ptr<float>();
  for (int64_t first = 0; first < tiles_; first += chunk_) {
    Matmul& mm = tiles_ - first >= chunk_ ? full_ : tail_;
    const int64_t rows = mm.rows;
    float* v = work;
    float* products = work + kAlpha * kAlpha * rows * c_;
    at::parallel_for(0, rows, 1,
                     [&](int64_t begin, int64_t end) { input_tiles(src, in, first, rows, begin, end, v); });
    mm.src.set_data_handle(v);
    mm.dst.set_data_handle(products);
    mm.scratchpad.set_data_handle(scratchpad);
    mm.primitive.execute(stream, {{DNNL_ARG_SRC, mm.src},
                                  {DNNL_ARG_WEIGHTS, weights_},
                                  {DNNL_ARG_DST, mm.dst},
                                  {DNNL_ARG_SCRATCHPAD, mm.scratchpad}});
    stream.wait();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      output_tiles(products, bias, act_, out, first, rows, begin, end, dst);
    });
  }
}

std::string WinogradConv::info() const {
  const int64_t chunks = (tiles_ + chunk_ - 1) / chunk_;
  return "F(4x4,3x3), " + std::to_string(chunks) + (chunks == 1 ? " chunk of " : " chunks of ") +
         std::to_string(chunk_) + " tiles, matmul " + full_.impl;
}

}  // namespace convnets
