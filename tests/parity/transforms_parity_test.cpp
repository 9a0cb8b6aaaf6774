// CPU transforms against PIL / TensorFlow / torchvision (fixtures from make_transform_fixtures.py).
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>

#include "data/crop_sampling.h"
#include "data/resample.h"
#include "data/transforms.h"
#include "test_support.h"
#include "util/safetensors.h"

namespace convnets {
namespace {

std::map<std::string, torch::Tensor>& fixtures() {
  static auto m = testing::load_fixture("transforms/expected.safetensors");
  return m;
}

int max_diff(const ImageU8& a, const torch::Tensor& b) {
  EXPECT_EQ(a.height, b.size(0));
  EXPECT_EQ(a.width, b.size(1));
  if (a.height != b.size(0) || a.width != b.size(1)) return 255;
  const auto ours =
      torch::from_blob(const_cast<uint8_t*>(a.pixels.data()), {a.height, a.width, 3}, torch::kUInt8);
  return (ours.to(torch::kInt) - b.to(torch::kInt)).abs().max().item<int>();
}

double mean_diff(const ImageU8& a, const torch::Tensor& b) {
  const auto ours =
      torch::from_blob(const_cast<uint8_t*>(a.pixels.data()), {a.height, a.width, 3}, torch::kUInt8);
  return (ours.to(torch::kFloat) - b.to(torch::kFloat)).abs().mean().item<double>();
}

std::string_view jpeg_of(const std::string& key) {
  const auto& t = fixtures().at(key);
  return {static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel())};
}

// Two-sample Kolmogorov-Smirnov statistic.
double ks(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double v = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= v) ++i;
    while (j < b.size() && b[j] <= v) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

struct CropStats {
  std::vector<double> area, ratio, cx, cy;
};
CropStats stats(const std::vector<CropRect>& crops, int width, int height) {
  CropStats s;
  for (const auto& c : crops) {
    s.area.push_back(static_cast<double>(c.width) * c.height / (static_cast<double>(width) * height));
    s.ratio.push_back(static_cast<double>(c.width) / c.height);
    s.cx.push_back((c.x + c.width / 2.0) / width);
    s.cy.push_back((c.y + c.height / 2.0) / height);
  }
  return s;
}
std::vector<CropRect> crops_of(const torch::Tensor& t) {
  std::vector<CropRect> out;
  for (int64_t i = 0; i < t.size(0); ++i) {
    out.push_back({static_cast<int>(t[i][0].item<int64_t>()), static_cast<int>(t[i][1].item<int64_t>()),
                   static_cast<int>(t[i][2].item<int64_t>()), static_cast<int>(t[i][3].item<int64_t>())});
  }
  return out;
}
void expect_same_distribution(const CropStats& ours, const CropStats& ref, const std::string& what) {
  // n = m = 4000: the 0.1% critical value of the KS statistic is 1.95 * sqrt(2 / 4000) = 0.044.
  EXPECT_LT(ks(ours.area, ref.area), 0.044) << what << " area";
  EXPECT_LT(ks(ours.ratio, ref.ratio), 0.044) << what << " aspect ratio";
  EXPECT_LT(ks(ours.cx, ref.cx), 0.044) << what << " centre x";
  EXPECT_LT(ks(ours.cy, ref.cy), 0.044) << what << " centre y";
}

}  // namespace

TEST(PilResize, BitExactWithBoxesBothFilters) {
  const ImageU8 src = testing::image_of(fixtures().at("resize.src"));
  for (const std::string filter : {"bilinear", "bicubic"}) {
    for (int k = 0; k < 5; ++k) {
      const std::string key = "resize." + filter + "." + std::to_string(k);
      const auto a = fixtures().at(key + ".args");
      const auto v = [&](int i) { return a[i].item<double>(); };
      const ImageU8 out = resize(src, static_cast<int>(v(0)), static_cast<int>(v(1)),
                                 parse_interpolation(filter), {v(2), v(3), v(4), v(5)});
      EXPECT_EQ(max_diff(out, fixtures().at(key)), 0) << key;
    }
  }
}

// Full-resolution decode (no DCT scaling): the eval transforms equal PIL's within +-1 (libjpeg vs PIL decode
// is
// +-1 already; the resampling itself is exact).
TEST(EvalTransforms, MatchPilAtFullResolution) {
  for (int k = 0; k < 4; ++k) {
    const std::string key = "eval." + std::to_string(k);
    const auto jpeg = jpeg_of(key + ".jpeg");
    const ImageU8 rn50 = eval_transform(jpeg, {.size = 224, .dct_scaling = false});
    EXPECT_LE(max_diff(rn50, fixtures().at(key + ".rn50")), 2) << key;
    EXPECT_LT(mean_diff(rn50, fixtures().at(key + ".rn50")), 0.05) << key;
    const ImageU8 eff = eval_transform(jpeg, {.size = 380,
                                              .interpolation = Interpolation::kBicubic,
                                              .crop = EvalCrop::kCenterFractionThenResize,
                                              .dct_scaling = false});
    EXPECT_LE(max_diff(eff, fixtures().at(key + ".effnet")), 2) << key;
    EXPECT_LT(mean_diff(eff, fixtures().at(key + ".effnet")), 0.05) << key;
  }
}

// PNG of every colour type and bit depth decodes to PIL's convert("RGB") exactly (what torchvision's loader
// feeds a model), and the EfficientNet eval transform on it equals PIL's crop + resize exactly (PNG is
// decoded whole, then takes the pixel path of the transforms).
TEST(Png, EveryColourTypeDecodesAsPilAndTransformsExactly) {
  int variants = 0;
  for (const auto& [key, bytes] : fixtures()) {
    if (key.rfind("png.", 0) != 0 || key.size() < 6 || key.compare(key.size() - 6, 6, ".bytes") != 0)
      continue;
    const std::string name = key.substr(0, key.size() - 6);
    const std::string_view png = jpeg_of(key);
    const ImageU8 rgb = decode_image(png);
    EXPECT_EQ(max_diff(rgb, fixtures().at(name + ".rgb")), 0) << name;
    const ImageU8 eff = eval_transform(
        png,
        {.size = 64, .interpolation = Interpolation::kBicubic, .crop = EvalCrop::kCenterFractionThenResize});
    EXPECT_EQ(max_diff(eff, fixtures().at(name + ".effnet64")), 0) << name;
    ++variants;
  }
  EXPECT_EQ(variants, 14);
  EXPECT_THROW(decode_image("GIF89a...."), ImageDecodeError);
  const std::string_view png = jpeg_of("png.rgb8.bytes");
  EXPECT_THROW(decode_image(png.substr(0, png.size() / 2)), ImageDecodeError);  // truncated
}

// Train-style crop then resize: exact path at full resolution, DCT-scaled path within a stated tolerance.
TEST(TrainTransforms, ResizedCropMatchesPilAndDctScalingStaysClose) {
  for (int k = 0; k < 4; ++k) {
    const std::string key = "eval." + std::to_string(k);
    const auto jpeg = jpeg_of(key + ".jpeg");
    const auto c = fixtures().at(key + ".crop");
    const Box box{c[0].item<double>(), c[1].item<double>(), c[0].item<double>() + c[2].item<double>(),
                  c[1].item<double>() + c[3].item<double>()};
    const auto& ref = fixtures().at(key + ".resized_crop");
    const ImageU8 exact = decode_resized(jpeg, box, true, 224, 224, Interpolation::kBilinear, false);
    EXPECT_LE(max_diff(exact, ref), 1) << key;
    const ImageU8 fast = decode_resized(jpeg, box, true, 224, 224, Interpolation::kBilinear, true);
    EXPECT_LT(mean_diff(fast, ref), 2.5) << key;  // DCT downscale instead of the antialias filter
  }
}

TEST(CropSampling, DistortedBoundingBoxMatchesTensorFlow) {
  Rng rng(3);
  for (const std::string tag : {"nobox", "box"}) {
    std::vector<BoundingBox> boxes;
    if (tag == "box") boxes.push_back({0.2f, 0.3f, 0.6f, 0.55f});
    std::vector<CropRect> ours;
    for (int i = 0; i < 4000; ++i) ours.push_back(sample_distorted_bounding_box(500, 375, boxes, {}, rng));
    expect_same_distribution(stats(ours, 500, 375),
                             stats(crops_of(fixtures().at("sampler.tf." + tag)), 500, 375), "tf " + tag);
  }
}

// The smallest crops decide the recipe's scale augmentation, and a distribution test over the whole range
// barely sees them: check the area range directly. With a bounding box of 10% of the image (without one,
// covering 10% of the whole image already bounds the area at 0.1), TensorFlow's sampler (area 0.05..1) puts
// a few percent of its crops below 8% of the image (torchvision's floor); ours must too, in the same
// proportion (binomial, 5 sigma), and none below 5% (less a pixel of rounding).
TEST(CropSampling, DistortedBoundingBoxReachesTheSmallestAreas) {
  const int64_t n = 4000;
  const double image_area = 500.0 * 375.0;
  auto small_share = [&](const std::vector<CropRect>& crops, double* smallest) {
    int64_t below = 0;
    *smallest = 1;
    for (const auto& c : crops) {
      const double area = c.width * c.height / image_area;
      below += area < 0.08;
      *smallest = std::min(*smallest, area);
    }
    return static_cast<double>(below) / static_cast<double>(crops.size());
  };
  Rng rng(13);
  std::vector<CropRect> ours;
  const std::vector<BoundingBox> box{{0.2f, 0.3f, 0.6f, 0.55f}};
  for (int64_t i = 0; i < n; ++i) ours.push_back(sample_distorted_bounding_box(500, 375, box, {}, rng));
  double ours_min = 0, tf_min = 0;
  const double ours_share = small_share(ours, &ours_min);
  const double tf_share = small_share(crops_of(fixtures().at("sampler.tf.box")), &tf_min);
  ASSERT_GT(tf_share, 0.01);
  const double sigma = std::sqrt(tf_share * (1 - tf_share) / static_cast<double>(n));
  EXPECT_NEAR(ours_share, tf_share, 5 * sqrt(2.0) * sigma) << "crops below 8% of the image";
  EXPECT_GE(ours_min, 0.05 - 2.0 * (500 + 375) / image_area);
  EXPECT_LT(ours_min, 0.06);
  std::printf("crops below 8%%: ours %.2f%%, TensorFlow %.2f%%; smallest %.4f vs %.4f\n", 100 * ours_share,
              100 * tf_share, ours_min, tf_min);
}

TEST(CropSampling, ResizedCropMatchesTorchvision) {
  Rng rng(4);
  std::vector<CropRect> ours;
  for (int i = 0; i < 4000; ++i) ours.push_back(sample_resized_crop(500, 375, {}, rng));
  expect_same_distribution(stats(ours, 500, 375),
                           stats(crops_of(fixtures().at("sampler.torchvision")), 500, 375), "torchvision");
}

}  // namespace convnets
