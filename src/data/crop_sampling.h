// Where to crop: the recipes' random-resized-crop samplers and the eval center crops.
#pragma once
#include <vector>

#include "data/image.h"
#include "data/imagenet_record.h"
#include "data/resample.h"
#include "util/random.h"

namespace convnets {

// TF's sample_distorted_bounding_box (RN50 TF1 and EfficientNet TF2 train transforms): per attempt an aspect
// ratio ~ U(ratio range), a height between the area bounds, a random position; accepted when every box is
// covered at least `min_object_covered` (no boxes: the whole image is the box). After `max_attempts`
// failures: the whole image.
struct DistortedBoxOptions {
  double min_object_covered = 0.1;
  double min_area = 0.05, max_area = 1.0;
  double min_ratio = 0.75, max_ratio = 1.33;
  int max_attempts = 100;
};
CropRect sample_distorted_bounding_box(int width, int height, const std::vector<BoundingBox>& boxes,
                                       const DistortedBoxOptions& options, Rng& rng);

// torchvision's RandomResizedCrop.get_params: area ~ U(scale) of the image, log-uniform aspect ratio, up to
// `max_attempts` tries; fallback: the largest centered crop with the ratio clamped into range.
struct ResizedCropOptions {
  double min_scale = 0.08, max_scale = 1.0;
  double min_ratio = 3.0 / 4.0, max_ratio = 4.0 / 3.0;
  int max_attempts = 100;
};
CropRect sample_resized_crop(int width, int height, const ResizedCropOptions& options, Rng& rng);

// RN50 eval: resize so the shorter side is `resize_shorter` (new = int(dim * resize_shorter / shorter)), then
// a centered size x size crop. Returned as the source box whose resize to size x size samples exactly the
// pixels of that crop (fractional, and the filter reaches outside it).
Box center_crop_after_shorter_resize(int width, int height, int resize_shorter, int size);

// EfficientNet eval: centered square crop of int(size / (size + 32) * shorter side) (TF2 recipe, §2.5).
CropRect center_crop_fraction(int width, int height, double fraction);

}  // namespace convnets
