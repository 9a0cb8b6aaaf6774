#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/augment.h"
#include "data/jpeg_codec.h"
#include "data/png_codec.h"

namespace convnets {
namespace {

ImageU8 decode_resized(std::string_view jpeg, const JpegInfo& info, const Box& region, bool confined,
                       int out_w, int out_h, Interpolation interpolation, bool dct_scaling) {
  // Smallest DCT scale at which the region still has at least the output's pixels (never upsample for speed).
  int s = 8;
  if (dct_scaling) {
    for (int k = 1; k < 8; ++k) {
      if ((region.x1 - region.x0) * k / 8 >= out_w && (region.y1 - region.y0) * k / 8 >= out_h) {
        s = k;
        break;
      }
    }
  }
  // The pixels to decode, in full-resolution coordinates: the region, plus the filter's reach when
  // unconfined.
  double margin = 0;
  if (!confined) {
    const double support = interpolation == Interpolation::kBilinear ? 1.0 : 2.0;
    const double filterscale =
        std::max(1.0, std::max((region.x1 - region.x0) / out_w, (region.y1 - region.y0) / out_h));
    margin = (std::ceil(support * filterscale) + 2) * 8.0 / s;
  }
  CropRect roi;
  roi.x = std::max(0, static_cast<int>(std::floor(region.x0 - margin)));
  roi.y = std::max(0, static_cast<int>(std::floor(region.y0 - margin)));
  roi.width = std::min(info.width, static_cast<int>(std::ceil(region.x1 + margin))) - roi.x;
  roi.height = std::min(info.height, static_cast<int>(std::ceil(region.y1 + margin))) - roi.y;
  const ImageU8 decoded = decode_jpeg(jpeg, {.crop = roi, .scale_num = s});
  // The region in the decoded image's coordinates (its origin is floor(roi * s / 8)).
  const double f = s / 8.0;
  const int ox = roi.x * s / 8, oy = roi.y * s / 8;
  Box box{region.x0 * f - ox, region.y0 * f - oy, region.x1 * f - ox, region.y1 * f - oy};
  box.x1 = std::min<double>(box.x1, decoded.width);
  box.y1 = std::min<double>(box.y1, decoded.height);
  return resize(decoded, out_w, out_h, interpolation, box);
}

}  // namespace

ImageU8 decode_resized(std::string_view jpeg, const Box& region, bool confined, int out_w, int out_h,
                       Interpolation interpolation, bool dct_scaling) {
  return decode_resized(jpeg, read_jpeg_info(jpeg), region, confined, out_w, out_h, interpolation,
                        dct_scaling);
}

namespace {

// What the transforms read: a JPEG decoded only where needed, or decoded pixels. Both give the crop of
// `region` resized to out_w x out_h, confined to the integer crop or not (see decode_resized).
struct Source {
  std::string_view jpeg{};
  JpegInfo info{};
  const ImageU8* pixels = nullptr;
  bool dct_scaling = true;

  int width() const { return pixels ? pixels->width : info.width; }
  int height() const { return pixels ? pixels->height : info.height; }
  ImageU8 resized(const Box& region, bool confined, int out_w, int out_h, Interpolation interpolation) const {
    if (!pixels)
      return decode_resized(jpeg, info, region, confined, out_w, out_h, interpolation, dct_scaling);
    if (!confined) return resize(*pixels, out_w, out_h, interpolation, region);
    // Crop to the integer rectangle, then resize all of it: the filter never reads outside the crop.
    const int x0 = static_cast<int>(region.x0), y0 = static_cast<int>(region.y0);
    const int w = static_cast<int>(region.x1) - x0, h = static_cast<int>(region.y1) - y0;
    ImageU8 crop(h, w);
    for (int y = 0; y < h; ++y)
      std::memcpy(crop.row(y), pixels->row(y0 + y) + 3 * x0, static_cast<size_t>(w) * 3);
    return resize(crop, out_w, out_h, interpolation);
  }
};

ImageU8 train_from(const Source& src, const std::vector<BoundingBox>& boxes, const TrainTransformOptions& o,
                   Rng& rng) {
  const CropRect crop =
      o.sampler == CropSampler::kDistortedBoundingBox
          ? sample_distorted_bounding_box(src.width(), src.height(), boxes, o.distorted, rng)
          : sample_resized_crop(src.width(), src.height(), o.resized, rng);
  const bool flip = rng.bernoulli(o.flip_probability);
  ImageU8 out =
      src.resized({static_cast<double>(crop.x), static_cast<double>(crop.y),
                   static_cast<double>(crop.x + crop.width), static_cast<double>(crop.y + crop.height)},
                  /*confined=*/true, o.size, o.size, o.interpolation);
  if (flip) flip_horizontal(out);
  if (o.augmentation == Augmentation::kAutoAugment) auto_augment(out, rng);
  if (o.augmentation == Augmentation::kRandAugment)
    rand_augment(out, o.randaugment_layers, o.randaugment_magnitude, rng);
  return out;
}

ImageU8 eval_from(const Source& src, const EvalTransformOptions& o) {
  if (o.crop == EvalCrop::kResizeShorterThenCenter) {
    const Box box = center_crop_after_shorter_resize(src.width(), src.height(), o.resize_shorter, o.size);
    return src.resized(box, /*confined=*/false, o.size, o.size, o.interpolation);
  }
  if (o.crop == EvalCrop::kSquash)
    return src.resized({0.0, 0.0, static_cast<double>(src.width()), static_cast<double>(src.height())},
                       /*confined=*/true, o.size, o.size, o.interpolation);
  const double fraction = o.crop_fraction > 0 ? o.crop_fraction : static_cast<double>(o.size) / (o.size + 32);
  const CropRect c = center_crop_fraction(src.width(), src.height(), fraction);
  return src.resized({static_cast<double>(c.x), static_cast<double>(c.y), static_cast<double>(c.x + c.width),
                      static_cast<double>(c.y + c.height)},
                     /*confined=*/true, o.size, o.size, o.interpolation);
}

bool is_jpeg(std::string_view bytes) {
  return bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
         static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF;
}

[[noreturn]] void unsupported(std::string_view bytes) {
  throw ImageDecodeError(bytes.empty() ? "empty image data"
                                       : "not a JPEG or PNG image (unsupported or corrupt encoding)");
}

}  // namespace

ImageU8 decode_image(std::string_view encoded) {
  if (is_png(encoded)) return decode_png(encoded);
  if (is_jpeg(encoded)) return decode_jpeg(encoded);
  unsupported(encoded);
}

ImageU8 train_transform(std::string_view encoded, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& o, Rng& rng) {
  if (is_png(encoded)) {
    const ImageU8 pixels = decode_png(encoded);
    return train_transform(pixels, boxes, o, rng);
  }
  if (!is_jpeg(encoded)) unsupported(encoded);
  return train_from({.jpeg = encoded, .info = read_jpeg_info(encoded), .dct_scaling = o.dct_scaling}, boxes,
                    o, rng);
}

ImageU8 eval_transform(std::string_view encoded, const EvalTransformOptions& o) {
  if (is_png(encoded)) return eval_transform(decode_png(encoded), o);
  if (!is_jpeg(encoded)) unsupported(encoded);
  if (!o.dct_scaling) return eval_transform(decode_jpeg(encoded), o);  // whole image: PIL's pixels exactly
  return eval_from({.jpeg = encoded, .info = read_jpeg_info(encoded), .dct_scaling = o.dct_scaling}, o);
}

ImageU8 train_transform(const ImageU8& image, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& o, Rng& rng) {
  return train_from({.pixels = &image}, boxes, o, rng);
}

ImageU8 eval_transform(const ImageU8& image, const EvalTransformOptions& o) {
  return eval_from({.pixels = &image}, o);
}

}  // namespace convnets
