#include "data/crop_sampling.h"

#include <algorithm>
#include <cmath>

namespace convnets {
namespace {

// TF GenerateRandomCrop: height from the area bounds at this aspect ratio, width = round(height * ratio).
bool generate_random_crop(int width, int height, double min_area_frac, double max_area_frac, double ratio,
                          Rng& rng, CropRect& crop) {
  const double min_area = min_area_frac * width * height;
  const double max_area = max_area_frac * width * height;
  int h = static_cast<int>(std::lrint(std::sqrt(min_area / ratio)));
  int max_h = static_cast<int>(std::lrint(std::sqrt(max_area / ratio)));
  if (std::lrint(max_h * ratio) > width) {
    constexpr double kEps = 0.0000001;
    max_h = static_cast<int>((width + 0.5 - kEps) / ratio);
    if (std::lrint(max_h * ratio) > width) max_h -= 1;
  }
  max_h = std::min(max_h, height);
  h = std::min(h, max_h);
  if (h < max_h) h += static_cast<int>(rng.uniform_int(max_h - h + 1));
  int w = static_cast<int>(std::lrint(h * ratio));
  double area = static_cast<double>(w) * h;
  if (area < min_area) {
    h += 1;
    w = static_cast<int>(std::lrint(h * ratio));
    area = static_cast<double>(w) * h;
  }
  if (area > max_area) {
    h -= 1;
    w = static_cast<int>(std::lrint(h * ratio));
    area = static_cast<double>(w) * h;
  }
  if (area < min_area || area > max_area || w > width || h > height || w <= 0 || h <= 0) return false;
  const int y = h < height ? static_cast<int>(rng.uniform_int(height - h)) : 0;
  const int x = w < width ? static_cast<int>(rng.uniform_int(width - w)) : 0;
  crop = {x, y, w, h};
  return true;
}

bool covers(const CropRect& crop, int width, int height, const std::vector<BoundingBox>& boxes,
            double min_covered) {
  auto covered = [&](double x0, double y0, double x1, double y1) {
    const double area = (x1 - x0) * (y1 - y0);
    if (area <= 0) return false;
    const double ix = std::max(0.0, std::min<double>(x1, crop.x + crop.width) - std::max<double>(x0, crop.x));
    const double iy =
        std::max(0.0, std::min<double>(y1, crop.y + crop.height) - std::max<double>(y0, crop.y));
    return ix * iy / area >= min_covered;
  };
  if (boxes.empty()) return covered(0, 0, width, height);
  for (const auto& b : boxes) {
    if (covered(b.xmin * width, b.ymin * height, b.xmax * width, b.ymax * height)) return true;
  }
  return false;
}

}  // namespace

CropRect sample_distorted_bounding_box(int width, int height, const std::vector<BoundingBox>& boxes,
                                       const DistortedBoxOptions& o, Rng& rng) {
  for (int attempt = 0; attempt < o.max_attempts; ++attempt) {
    const double ratio = rng.uniform(o.min_ratio, o.max_ratio);
    CropRect crop;
    if (generate_random_crop(width, height, o.min_area, o.max_area, ratio, rng, crop) &&
        covers(crop, width, height, boxes, o.min_object_covered)) {
      return crop;
    }
  }
  return {0, 0, width, height};
}

CropRect sample_resized_crop(int width, int height, const ResizedCropOptions& o, Rng& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(o.min_ratio), log_hi = std::log(o.max_ratio);
  for (int attempt = 0; attempt < o.max_attempts; ++attempt) {
    const double target_area = area * rng.uniform(o.min_scale, o.max_scale);
    const double ratio = std::exp(rng.uniform(log_lo, log_hi));
    const int w = static_cast<int>(std::lround(std::sqrt(target_area * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target_area / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int y = static_cast<int>(rng.uniform_int(height - h + 1));
      const int x = static_cast<int>(rng.uniform_int(width - w + 1));
      return {x, y, w, h};
    }
  }
  // Fallback: central crop with the aspect ratio clamped into range (torchvision).
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < o.min_ratio) {
    h = static_cast<int>(std::lround(w / o.min_ratio));
  } else if (in_ratio > o.max_ratio) {
    w = static_cast<int>(std::lround(h * o.max_ratio));
  }
  return {(width - w) / 2, (height - h) / 2, w, h};
}

Box center_crop_after_shorter_resize(int width, int height, int resize_shorter, int size) {
  const int shorter = std::min(width, height);
  const int rw = static_cast<int>(static_cast<int64_t>(width) * resize_shorter / shorter);
  const int rh = static_cast<int>(static_cast<int64_t>(height) * resize_shorter / shorter);
  const int left = (rw - size) / 2, top = (rh - size) / 2;
  // Output pixel i of the crop is output pixel left + i of the full resize, whose source scale is W / rw.
  const double sx = static_cast<double>(width) / rw, sy = static_cast<double>(height) / rh;
  return {left * sx, top * sy, (left + size) * sx, (top + size) * sy};
}

CropRect center_crop_fraction(int width, int height, double fraction) {
  const int crop = std::max(1, static_cast<int>(fraction * std::min(width, height)));
  return {(width - crop + 1) / 2, (height - crop + 1) / 2, crop, crop};
}

}  // namespace convnets
