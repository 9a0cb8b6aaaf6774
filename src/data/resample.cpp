#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace convnets {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output pixel: the first input index, the count, and `ksize` fixed-point weights (Pillow's
// precompute_coeffs + normalize_coeffs_8bpc).
struct Coefficients {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, count per output
  std::vector<int32_t> weights;
};

Coefficients precompute(int in_size, double in0, double in1, int out_size, Interpolation filter) {
  const double support_unit = filter == Interpolation::kBilinear ? 1.0 : 2.0;
  const double scale = (in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = support_unit * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = filter == Interpolation::kBilinear ? bilinear_filter((x + xmin - center + 0.5) * ss)
                                                          : bicubic_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      c.weights[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Output row yy = sum over taps of input rows (from `row_offset`), weighted: accumulating whole rows keeps
// the inner loop contiguous, which the compiler vectorises. Integer sums make the order irrelevant, so the
// result is Pillow's exactly.
// AVX2 clone where the CPU has it: SSE2 has no 32-bit integer multiply, so the default build vectorises
// poorly.
__attribute__((target_clones("avx2", "default"))) ImageU8 convolve_rows(const ImageU8& in, int out_height,
                                                                        const Coefficients& c,
                                                                        int row_offset) {
  ImageU8 out(out_height, in.width);
  const int n = 3 * in.width;
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int yy = 0; yy < out_height; ++yy) {
    const int ymin = c.bounds[2 * yy] - row_offset, count = c.bounds[2 * yy + 1];
    const int32_t* k = &c.weights[static_cast<size_t>(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < count; ++y) {
      const uint8_t* src = in.row(y + ymin);
      const int32_t w = k[y];
      int32_t* a = acc.data();
      for (int x = 0; x < n; ++x) a[x] += src[x] * w;
    }
    uint8_t* dst = out.row(yy);
    for (int x = 0; x < n; ++x) dst[x] = clip8(acc[x]);
  }
  return out;
}

// Swaps x and y (rows `row0`..`row0 + rows` of `in` become columns).
ImageU8 transpose(const ImageU8& in, int row0, int rows) {
  ImageU8 out(in.width, rows);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.row(row0 + y);
    for (int x = 0; x < in.width; ++x) {
      uint8_t* d = out.row(x) + 3 * y;
      d[0] = src[3 * x];
      d[1] = src[3 * x + 1];
      d[2] = src[3 * x + 2];
    }
  }
  return out;
}

// The horizontal pass is the row convolution of the transposed image.
ImageU8 horizontal(const ImageU8& in, int out_width, int row0, int rows, const Coefficients& c) {
  const ImageU8 columns = convolve_rows(transpose(in, row0, rows), out_width, c, 0);
  return transpose(columns, 0, columns.height);
}

}  // namespace

ImageU8 resize(const ImageU8& in, int out_width, int out_height, Interpolation filter, const Box& box) {
  if (out_width <= 0 || out_height <= 0) throw std::invalid_argument("resize: output size must be positive");
  if (box.x0 < 0 || box.y0 < 0 || box.x1 > in.width || box.y1 > in.height || box.x0 >= box.x1 ||
      box.y0 >= box.y1) {
    throw std::invalid_argument("resize: box outside the image");
  }
  const bool need_h = out_width != in.width || box.x0 != 0 || box.x1 != in.width;
  const bool need_v = out_height != in.height || box.y0 != 0 || box.y1 != in.height;
  const Coefficients ch = precompute(in.width, box.x0, box.x1, out_width, filter);
  const Coefficients cv = precompute(in.height, box.y0, box.y1, out_height, filter);
  // As Pillow: the horizontal pass covers only the rows the vertical pass will read.
  const int first = cv.bounds[0];
  const int last = cv.bounds[2 * (out_height - 1)] + cv.bounds[2 * (out_height - 1) + 1];
  ImageU8 tmp;
  const ImageU8* cur = &in;
  int row_offset = 0;
  if (need_h) {
    tmp = need_v ? horizontal(in, out_width, first, last - first, ch)
                 : horizontal(in, out_width, 0, in.height, ch);
    row_offset = need_v ? first : 0;
    cur = &tmp;
  }
  if (need_v) return convolve_rows(*cur, out_height, cv, row_offset);
  return need_h ? tmp : in;
}

void flip_horizontal(ImageU8& image) {
  for (int y = 0; y < image.height; ++y) {
    uint8_t* row = image.row(y);
    for (int l = 0, r = image.width - 1; l < r; ++l, --r) {
      std::swap(row[3 * l], row[3 * r]);
      std::swap(row[3 * l + 1], row[3 * r + 1]);
      std::swap(row[3 * l + 2], row[3 * r + 2]);
    }
  }
}

}  // namespace convnets
