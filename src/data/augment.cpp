#include "data/augment.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

namespace convnets {
namespace {

constexpr uint8_t kFill = 128;

uint8_t luma(const uint8_t* p) {  // PIL's "L" conversion (ITU-R 601-2), fixed point with rounding
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

// PIL's Image.blend(degenerate, image, factor): float arithmetic, truncation, clipping when extrapolating.
void blend(const ImageU8& degenerate, ImageU8& image, float factor) {
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const float d = degenerate.pixels[i];
    const float v = d + factor * (static_cast<float>(image.pixels[i]) - d);
    image.pixels[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : static_cast<uint8_t>(v);
  }
}

void apply_lut(ImageU8& image, const std::array<std::array<uint8_t, 256>, 3>& lut) {
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = lut[i % 3][image.pixels[i]];
}

std::array<std::array<int64_t, 256>, 3> histograms(const ImageU8& image) {
  std::array<std::array<int64_t, 256>, 3> h{};
  for (size_t i = 0; i < image.pixels.size(); ++i) ++h[i % 3][image.pixels[i]];
  return h;
}

// Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2), nearest neighbour (rounded, as TF's
// projective transform), fill 128 outside.
void transform_nearest(ImageU8& image, double a0, double a1, double a2, double b0, double b1, double b2) {
  ImageU8 out(image.height, image.width);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const auto sx = static_cast<long>(std::lround(a0 * x + a1 * y + a2));
      const auto sy = static_cast<long>(std::lround(b0 * x + b1 * y + b2));
      uint8_t* d = out.row(y) + 3 * x;
      if (sx < 0 || sy < 0 || sx >= image.width || sy >= image.height) {
        d[0] = d[1] = d[2] = kFill;
      } else {
        std::copy_n(image.row(static_cast<int>(sy)) + 3 * sx, 3, d);
      }
    }
  }
  image = std::move(out);
}

void auto_contrast(ImageU8& image) {
  const auto h = histograms(image);
  std::array<std::array<uint8_t, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c) {
    int lo = 0, hi = 255;
    while (lo < 255 && h[c][lo] == 0) ++lo;
    while (hi > 0 && h[c][hi] == 0) --hi;
    for (int i = 0; i < 256; ++i) {
      if (hi <= lo) {
        lut[c][i] = static_cast<uint8_t>(i);
      } else {
        const double scale = 255.0 / (hi - lo), offset = -lo * scale;
        lut[c][i] = static_cast<uint8_t>(std::clamp(static_cast<int>(i * scale + offset), 0, 255));
      }
    }
  }
  apply_lut(image, lut);
}

void equalize(ImageU8& image) {
  const auto h = histograms(image);
  std::array<std::array<uint8_t, 256>, 3> lut{};
  for (int c = 0; c < 3; ++c) {
    int64_t total = 0, last = 0, nonzero = 0;
    for (int i = 0; i < 256; ++i) {
      if (h[c][i]) {
        total += h[c][i];
        last = h[c][i];
        ++nonzero;
      }
    }
    const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      if (step == 0) {
        lut[c][i] = static_cast<uint8_t>(i);
      } else {
        lut[c][i] = static_cast<uint8_t>(std::min<int64_t>(255, n / step));
        n += h[c][i];
      }
    }
  }
  apply_lut(image, lut);
}

void smooth_degenerate(const ImageU8& image, ImageU8& out) {  // PIL ImageFilter.SMOOTH, border kept
  out = image;
  for (int y = 1; y + 1 < image.height; ++y) {
    for (int x = 1; x + 1 < image.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        int sum = 4 * image.row(y)[3 * x + c];
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) sum += image.row(y + dy)[3 * (x + dx) + c];
        }
        out.row(y)[3 * x + c] = static_cast<uint8_t>(std::min(255.0, sum / 13.0 + 0.5));
      }
    }
  }
}

}  // namespace

const std::string& op_name(AugmentOp op) {
  static const std::string names[] = {"AutoContrast", "Equalize", "Invert",     "Rotate",     "Posterize",
                                      "Solarize",     "Color",    "Contrast",   "Brightness", "Sharpness",
                                      "ShearX",       "ShearY",   "TranslateX", "TranslateY", "Cutout",
                                      "SolarizeAdd",  "Identity"};
  return names[static_cast<int>(op)];
}

void apply_op(ImageU8& image, AugmentOp op, double arg, Rng* rng) {
  const double w = image.width, h = image.height;
  switch (op) {
    case AugmentOp::kIdentity:
      return;
    case AugmentOp::kAutoContrast:
      return auto_contrast(image);
    case AugmentOp::kEqualize:
      return equalize(image);
    case AugmentOp::kInvert:
      for (auto& v : image.pixels) v = static_cast<uint8_t>(255 - v);
      return;
    case AugmentOp::kPosterize: {
      // Quirk kept: 0 bits would be a shift of 8, which TF clamps to 7 (1 bit), as the recipe trained with.
      const int shift = std::clamp(8 - static_cast<int>(arg), 0, 7);
      for (auto& v : image.pixels) v = static_cast<uint8_t>((v >> shift) << shift);
      return;
    }
    case AugmentOp::kSolarize:  // threshold 256 (level 10) leaves the image as it is (PIL), not TF's wrap
      for (auto& v : image.pixels) v = v < arg ? v : static_cast<uint8_t>(255 - v);
      return;
    case AugmentOp::kSolarizeAdd:
      for (auto& v : image.pixels) v = v < 128 ? static_cast<uint8_t>(std::min(255.0, v + arg)) : v;
      return;
    case AugmentOp::kColor: {
      ImageU8 gray(image.height, image.width);
      for (size_t p = 0; p < image.pixels.size(); p += 3)
        gray.pixels[p] = gray.pixels[p + 1] = gray.pixels[p + 2] = luma(&image.pixels[p]);
      return blend(gray, image, static_cast<float>(arg));
    }
    case AugmentOp::kContrast: {
      // Quirk fixed: the degenerate is the mean grey level (PIL), not TF's pixel count / 256.
      double sum = 0;
      for (size_t p = 0; p < image.pixels.size(); p += 3) sum += luma(&image.pixels[p]);
      ImageU8 mean(image.height, image.width);
      std::fill(mean.pixels.begin(), mean.pixels.end(), static_cast<uint8_t>(sum / (w * h) + 0.5));
      return blend(mean, image, static_cast<float>(arg));
    }
    case AugmentOp::kBrightness: {
      ImageU8 black(image.height, image.width);
      return blend(black, image, static_cast<float>(arg));
    }
    case AugmentOp::kSharpness: {
      ImageU8 smooth;
      smooth_degenerate(image, smooth);
      return blend(smooth, image, static_cast<float>(arg));
    }
    case AugmentOp::kRotate: {
      // TF angles_to_projective_transforms: counter-clockwise about the centre of the pixel grid.
      const double a = arg * M_PI / 180.0, c = std::cos(a), s = std::sin(a);
      const double x_offset = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0;
      const double y_offset = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0;
      return transform_nearest(image, c, -s, x_offset, s, c, y_offset);
    }
    case AugmentOp::kShearX:
      return transform_nearest(image, 1, arg, 0, 0, 1, 0);
    case AugmentOp::kShearY:
      return transform_nearest(image, 1, 0, 0, arg, 1, 0);
    case AugmentOp::kTranslateX:
      return transform_nearest(image, 1, 0, -arg, 0, 1, 0);
    case AugmentOp::kTranslateY:
      return transform_nearest(image, 1, 0, 0, 0, 1, -arg);
    case AugmentOp::kCutout: {
      if (!rng) throw std::invalid_argument("Cutout needs a random generator");
      const int pad = static_cast<int>(arg);
      const int cy = static_cast<int>(rng->uniform_int(image.height)),
                cx = static_cast<int>(rng->uniform_int(image.width));
      for (int y = std::max(0, cy - pad); y < std::min(image.height, cy + pad); ++y) {
        for (int x = std::max(0, cx - pad); x < std::min(image.width, cx + pad); ++x) {
          uint8_t* d = image.row(y) + 3 * x;
          d[0] = d[1] = d[2] = kFill;
        }
      }
      return;
    }
  }
}

double level_to_argument(AugmentOp op, double level, const AugmentConstants& k, Rng& rng) {
  const double l = level / 10.0;
  auto random_sign = [&](double v) { return rng.bernoulli(0.5) ? v : -v; };
  switch (op) {
    case AugmentOp::kRotate:
      return random_sign(l * 30.0);
    case AugmentOp::kShearX:
    case AugmentOp::kShearY:
      return random_sign(l * 0.3);
    case AugmentOp::kTranslateX:
    case AugmentOp::kTranslateY:
      return random_sign(l * k.translate);
    case AugmentOp::kColor:
    case AugmentOp::kContrast:
    case AugmentOp::kBrightness:
    case AugmentOp::kSharpness:
      return l * 1.8 + 0.1;
    case AugmentOp::kPosterize:
      return static_cast<int>(l * 4);
    case AugmentOp::kSolarize:
      return static_cast<int>(l * 256);
    case AugmentOp::kSolarizeAdd:
      return static_cast<int>(l * 110);
    case AugmentOp::kCutout:
      return static_cast<int>(l * k.cutout);
    default:
      return 0.0;
  }
}

std::vector<AppliedOp> auto_augment(ImageU8& image, Rng& rng, const AugmentConstants& constants) {
  using O = AugmentOp;
  struct Step {
    O op;
    double probability;
    int level;
  };
  // Policy v0 (docs/recipes.md), 25 sub-policies of two ops.
  static const std::array<std::array<Step, 2>, 25> policy = {{
      {{{O::kEqualize, .8, 1}, {O::kShearY, .8, 4}}},
      {{{O::kColor, .4, 9}, {O::kEqualize, .6, 3}}},
      {{{O::kColor, .4, 1}, {O::kRotate, .6, 8}}},
      {{{O::kSolarize, .8, 3}, {O::kEqualize, .4, 7}}},
      {{{O::kSolarize, .4, 2}, {O::kSolarize, .6, 2}}},
      {{{O::kColor, .2, 0}, {O::kEqualize, .8, 8}}},
      {{{O::kEqualize, .4, 8}, {O::kSolarizeAdd, .8, 3}}},
      {{{O::kShearX, .2, 9}, {O::kRotate, .6, 8}}},
      {{{O::kColor, .6, 1}, {O::kEqualize, 1., 2}}},
      {{{O::kInvert, .4, 9}, {O::kRotate, .6, 0}}},
      {{{O::kEqualize, 1., 9}, {O::kShearY, .6, 3}}},
      {{{O::kColor, .4, 7}, {O::kEqualize, .6, 0}}},
      {{{O::kPosterize, .4, 6}, {O::kAutoContrast, .4, 7}}},
      {{{O::kSolarize, .6, 8}, {O::kColor, .6, 9}}},
      {{{O::kSolarize, .2, 4}, {O::kRotate, .8, 9}}},
      {{{O::kRotate, 1., 7}, {O::kTranslateY, .8, 9}}},
      {{{O::kShearX, 0., 0}, {O::kSolarize, .8, 4}}},
      {{{O::kShearY, .8, 0}, {O::kColor, .6, 4}}},
      {{{O::kColor, 1., 0}, {O::kRotate, .6, 2}}},
      {{{O::kEqualize, .8, 4}, {O::kEqualize, 0., 8}}},
      {{{O::kEqualize, 1., 4}, {O::kAutoContrast, .6, 2}}},
      {{{O::kShearY, .4, 7}, {O::kSolarizeAdd, .6, 7}}},
      {{{O::kPosterize, .8, 2}, {O::kSolarize, .6, 10}}},
      {{{O::kSolarize, .6, 8}, {O::kEqualize, .6, 1}}},
      {{{O::kColor, .8, 6}, {O::kRotate, .4, 5}}},
  }};
  std::vector<AppliedOp> applied;
  for (const Step& step : policy[static_cast<size_t>(rng.uniform_int(25))]) {
    if (!rng.bernoulli(step.probability)) continue;
    const double arg = level_to_argument(step.op, step.level, constants, rng);
    apply_op(image, step.op, arg, &rng);
    applied.push_back({step.op, arg});
  }
  return applied;
}

std::vector<AppliedOp> rand_augment(ImageU8& image, int num_layers, double magnitude, Rng& rng,
                                    const AugmentConstants& constants) {
  std::vector<AppliedOp> applied;
  for (int i = 0; i < num_layers; ++i) {
    const auto op = static_cast<AugmentOp>(rng.uniform_int(17));  // 16 ops + identity
    const double arg = level_to_argument(op, magnitude, constants, rng);
    apply_op(image, op, arg, &rng);
    applied.push_back({op, arg});
  }
  return applied;
}

}  // namespace convnets
