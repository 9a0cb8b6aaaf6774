// The per-image CPU transforms: JPEG decode fused with the crop (PNG and other decoded pixels take the same
// geometry on the whole image), resize, flip, augmentation; uint8 out (normalisation happens on the device,
// after batching).
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
  // Applied last, on the uint8 crop (docs/recipes.md).
  Augmentation augmentation = Augmentation::kNone;
  int randaugment_layers = 2;
  double randaugment_magnitude = 10;
};

// kResizeShorterThenCenter: the shorter side to resize_shorter, the centre size x size (torchvision, timm
// "center"); kCenterFractionThenResize: the centre crop_fraction of the shorter side, resized to size
// (TensorFlow's); kSquash: the whole image resized to size x size (timm "squash").
enum class EvalCrop { kResizeShorterThenCenter, kCenterFractionThenResize, kSquash };

struct EvalTransformOptions {
  int size = 224;
  Interpolation interpolation = Interpolation::kBilinear;
  EvalCrop crop = EvalCrop::kResizeShorterThenCenter;
  int resize_shorter = 256;    // kResizeShorterThenCenter
  double crop_fraction = 0.0;  // kCenterFractionThenResize; 0: size / (size + 32)
  // true: decode only the crop's region at the smallest sufficient DCT scale (faster, a little off PIL at the
  // crop's edges); false: decode the whole image, then crop and resize: PIL's and torchvision's pixels.
  bool dct_scaling = true;
};

// Decodes `region` of a JPEG and resizes it to out_w x out_h. With `confined` only pixels inside the integer
// crop are used (crop, then resize: torchvision's resized_crop); otherwise the resampling filter may read
// around the box (resize the whole image, then crop). At DCT scale 8 the result is bit-identical to PIL.
ImageU8 decode_resized(std::string_view jpeg, const Box& region, bool confined, int out_w, int out_h,
                       Interpolation interpolation, bool dct_scaling);

// `encoded`: a JPEG (decoded only where the crop needs it, at the smallest sufficient DCT scale unless
// dct_scaling is off) or a PNG (decoded whole, then the pixel path). Throws ImageDecodeError for anything
// else.
ImageU8 train_transform(std::string_view encoded, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& options, Rng& rng);
ImageU8 eval_transform(std::string_view encoded, const EvalTransformOptions& options);
// The same transforms on decoded pixels: the same crop geometry and random draws, the same resampler. On a
// JPEG decoded whole this is what PIL + torchvision compute (no ROI or DCT-scaled decoding involved).
ImageU8 train_transform(const ImageU8& image, const std::vector<BoundingBox>& boxes,
                        const TrainTransformOptions& options, Rng& rng);
ImageU8 eval_transform(const ImageU8& image, const EvalTransformOptions& options);

// A JPEG or PNG decoded whole to RGB (PIL's convert("RGB")); ImageDecodeError for other data.
ImageU8 decode_image(std::string_view encoded);

}  // namespace convnets
