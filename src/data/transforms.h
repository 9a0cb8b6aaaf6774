// The per-image CPU transforms: JPEG decode fused with the crop, resize, flip; uint8 out (normalisation
// happens on the device, after batching).
#pragma once
#include <string_view>
#include <vector>

#include "data/crop_sampling.h"
#include "data/image.h"
#include "data/resample.h"
#include "util/random.h"

namespace convnets {

enum class CropSampler { kDistortedBoundingBox, kResizedCrop };
enum class Augmentation { kNone, kAutoAugment, kRandAugment };

struct TrainTransformOptions {
  int size = 224;
  Interpolation interpolation = Interpolation::kBilinear;
  CropSampler sampler = CropSampler::kDistortedBoundingBox;
  DistortedBoxOptions distorted{};
  ResizedCropOptions resized{};
  double flip_probability = 0.5;
  bool dct_scaling = true;  // decode at the smallest sufficient DCT scale (faster; approximates full decode)
  // Applied last, on the uint8 crop (recipe-spec §2.5).
  Augmentation augmentation = Augmentation::kNone;
  int randaugment_layers = 2;
  double randaugment_magnitude = 10;
};

enum class EvalCrop { kResizeShorterThenCenter, kCenterFractionThenResize };

struct EvalTransformOptions {
  int size = 224;
  Interpolation interpolation = Interpolation::kBilinear;
  EvalCrop crop = EvalCrop::kResizeShorterThenCenter;
  int resize_shorter = 256;    // kResizeShorterThenCenter
  double crop_fraction = 0.0;  // kCenterFractionThenResize; 0: size / (size + 32)
  bool dct_scaling = true;
};

// Decodes `region` of a JPEG and resizes it to out_w x out_h. With `confined` only pixels inside the integer
// crop are used (crop, then resize: torchvision's resized_crop); otherwise the resampling filter may read
// around the box (resize the whole image, then crop). At DCT scale 8 the result is bit-identical to PIL.
ImageU8 decode_resized(std::string_view jpeg, const Box& region, bool confined, int out_w, int out_h,
                       Interpolation interpolation, bool dct_scaling);

ImageU8 train_transform(std::string_view jpeg, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& options, Rng& rng);
ImageU8 eval_transform(std::string_view jpeg, const EvalTransformOptions& options);

}  // namespace convnets
