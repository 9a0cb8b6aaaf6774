#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "data/augment.h"
#include "data/jpeg_codec.h"

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

ImageU8 train_transform(std::string_view jpeg, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& o, Rng& rng) {
  const JpegInfo info = read_jpeg_info(jpeg);
  const CropRect crop = o.sampler == CropSampler::kDistortedBoundingBox
                            ? sample_distorted_bounding_box(info.width, info.height, boxes, o.distorted, rng)
                            : sample_resized_crop(info.width, info.height, o.resized, rng);
  const bool flip = rng.bernoulli(o.flip_probability);
  ImageU8 out =
      decode_resized(jpeg, info,
                     {static_cast<double>(crop.x), static_cast<double>(crop.y),
                      static_cast<double>(crop.x + crop.width), static_cast<double>(crop.y + crop.height)},
                     /*confined=*/true, o.size, o.size, o.interpolation, o.dct_scaling);
  if (flip) flip_horizontal(out);
  if (o.augmentation == Augmentation::kAutoAugment) auto_augment(out, rng);
  if (o.augmentation == Augmentation::kRandAugment)
    rand_augment(out, o.randaugment_layers, o.randaugment_magnitude, rng);
  return out;
}

ImageU8 eval_transform(std::string_view jpeg, const EvalTransformOptions& o) {
  const JpegInfo info = read_jpeg_info(jpeg);
  if (o.crop == EvalCrop::kResizeShorterThenCenter) {
    const Box box = center_crop_after_shorter_resize(info.width, info.height, o.resize_shorter, o.size);
    return decode_resized(jpeg, info, box, /*confined=*/false, o.size, o.size, o.interpolation,
                          o.dct_scaling);
  }
  const double fraction = o.crop_fraction > 0 ? o.crop_fraction : static_cast<double>(o.size) / (o.size + 32);
  const CropRect c = center_crop_fraction(info.width, info.height, fraction);
  return decode_resized(jpeg, info,
                        {static_cast<double>(c.x), static_cast<double>(c.y),
                         static_cast<double>(c.x + c.width), static_cast<double>(c.y + c.height)},
                        /*confined=*/true, o.size, o.size, o.interpolation, o.dct_scaling);
}

}  // namespace convnets
