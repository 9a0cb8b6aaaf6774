#include "data/jpeg_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

namespace convnets {
namespace {

// A smooth, photo-like test image (JPEG-friendly, so the codec's error stays small).
ImageU8 smooth_image(int h, int w) {
  ImageU8 img(h, w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.row(y) + 3 * x;
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin(x * 0.05) * std::cos(y * 0.03));
      p[1] = static_cast<uint8_t>(std::min(255, x * 255 / w + y / 4));
      p[2] = static_cast<uint8_t>(128 + 90 * std::cos((x + y) * 0.04));
    }
  }
  return img;
}

struct Diff {
  double mean;
  int max;
};
Diff compare(const ImageU8& a, const ImageU8& b) {
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  if (a.pixels.size() != b.pixels.size()) return {1e9, 255};
  double sum = 0;
  int mx = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    sum += d;
    mx = std::max(mx, d);
  }
  return {sum / static_cast<double>(a.pixels.size()), mx};
}

ImageU8 crop(const ImageU8& img, const CropRect& r) {
  ImageU8 out(r.height, r.width);
  for (int y = 0; y < r.height; ++y) std::copy_n(img.row(r.y + y) + 3 * r.x, 3 * r.width, out.row(y));
  return out;
}

}  // namespace

TEST(JpegCodec, EncodeDecodeRoundTrip) {
  const ImageU8 original = smooth_image(48, 64);
  const std::string jpeg = encode_jpeg(original, 100);
  const JpegInfo info = read_jpeg_info(jpeg);
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 48);
  EXPECT_EQ(info.components, 3);
  const Diff d = compare(decode_jpeg(jpeg), original);
  EXPECT_LT(d.mean, 1.5);
}

// ROI decode at full scale: identical to decoding everything and cropping (tolerance: exact).
TEST(JpegCodec, RoiDecodeEqualsDecodeThenCrop) {
  const std::string jpeg = encode_jpeg(smooth_image(120, 160), 90);
  const ImageU8 full = decode_jpeg(jpeg);
  for (const CropRect r :
       {CropRect{13, 7, 30, 20}, CropRect{0, 0, 160, 1}, CropRect{100, 90, 60, 30}, CropRect{33, 61, 1, 1}}) {
    int scale = 0;
    const ImageU8 roi = decode_jpeg(jpeg, {.crop = r}, &scale);
    EXPECT_EQ(scale, 8);
    const Diff d = compare(roi, crop(full, r));
    EXPECT_EQ(d.max, 0) << r.x << "," << r.y << " " << r.width << "x" << r.height;
  }
}

// Random crops at DCT scales 2/8, 4/8 and 8/8 equal "decode the whole image at that scale, then crop".
TEST(JpegCodec, RandomRoisAtEveryScaleAreExact) {
  const std::string jpeg = encode_jpeg(smooth_image(203, 317), 85);
  std::mt19937 rng(1);
  for (int s : {2, 4, 8}) {
    const ImageU8 full = decode_jpeg(jpeg, {.scale_num = s});
    for (int trial = 0; trial < 100; ++trial) {
      CropRect r;
      r.width = 1 + static_cast<int>(rng() % 317);
      r.height = 1 + static_cast<int>(rng() % 203);
      r.x = static_cast<int>(rng() % static_cast<unsigned>(317 - r.width + 1));
      r.y = static_cast<int>(rng() % static_cast<unsigned>(203 - r.height + 1));
      const ImageU8 roi = decode_jpeg(jpeg, {.crop = r, .scale_num = s});
      const int x0 = r.x * s / 8, y0 = r.y * s / 8;
      const CropRect scaled_rect{x0, y0, roi.width, roi.height};
      ASSERT_EQ(roi.width, (((r.x + r.width) * s + 7) / 8) - x0);
      ASSERT_EQ(compare(roi, crop(full, scaled_rect)).max, 0)
          << "scale " << s << " crop " << r.width << "x" << r.height << "+" << r.x << "+" << r.y;
    }
  }
}

// DCT-domain 1/2 scale: close to a 2x2 box average of the full decode (tolerance: mean < 2, max < 24).
TEST(JpegCodec, DctScaledDecodeIsCloseToBoxDownsampling) {
  const std::string jpeg = encode_jpeg(smooth_image(192, 256), 95);
  const ImageU8 full = decode_jpeg(jpeg);
  int scale = 0;
  const ImageU8 half = decode_jpeg(jpeg, {.min_width = 100, .min_height = 90}, &scale);
  ASSERT_EQ(scale, 4);
  ASSERT_EQ(half.width, 128);
  ImageU8 box(96, 128);
  for (int y = 0; y < 96; ++y) {
    for (int x = 0; x < 128; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int sum = full.row(2 * y)[6 * x + c] + full.row(2 * y)[6 * x + 3 + c] +
                        full.row(2 * y + 1)[6 * x + c] + full.row(2 * y + 1)[6 * x + 3 + c];
        box.row(y)[3 * x + c] = static_cast<uint8_t>((sum + 2) / 4);
      }
    }
  }
  const Diff d = compare(half, box);
  EXPECT_LT(d.mean, 2.0);
  EXPECT_LT(d.max, 24);
  // A crop that must stay >= 40x40 from a 100x100 region decodes at 4/8: 50x50.
  const ImageU8 roi =
      decode_jpeg(jpeg, {.crop = {16, 16, 100, 100}, .min_width = 40, .min_height = 40}, &scale);
  EXPECT_EQ(scale, 4);
  EXPECT_EQ(roi.width, 50);
  EXPECT_EQ(roi.height, 50);
}

TEST(JpegCodec, CorruptAndTruncatedDataAreErrors) {
  const std::string jpeg = encode_jpeg(smooth_image(64, 64), 90);
  EXPECT_THROW(decode_jpeg(jpeg.substr(0, jpeg.size() / 2)),
               JpegError);  // premature end: a warning in libjpeg
  EXPECT_THROW(decode_jpeg("not a jpeg at all"), JpegError);
  EXPECT_THROW(decode_jpeg(""), JpegError);
  EXPECT_THROW(decode_jpeg(jpeg, {.crop = {60, 0, 10, 10}}), JpegError);
  EXPECT_THROW(read_jpeg_info(jpeg.substr(0, 10)), JpegError);
}

}  // namespace convnets
