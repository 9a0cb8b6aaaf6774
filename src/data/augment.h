// AutoAugment (policy v0) and RandAugment(N, M) on uint8 RGB images, with the ops, level -> argument mapping
// and fill value of the EfficientNet TF2 recipe (docs/recipes.md). Quirk decisions, each marked in the code:
//  - Contrast blends with the mean grey level (as PIL and the PyTorch recipe); TF used pixel count / 256.
//  - Solarize at level 10 (threshold 256) is a no-op, as in PIL; TF's uint8 cast could wrap it to "invert".
//  - Posterize with 0 bits keeps 1 bit, as TF's clamped shift did in the recipe (not a black image).
//  - RandAugment applies the chosen op always (the recipe's sampled probability was unused).
#pragma once
#include <string>
#include <vector>

#include "data/image.h"
#include "util/random.h"

namespace convnets {

enum class AugmentOp {
  kAutoContrast,
  kEqualize,
  kInvert,
  kRotate,
  kPosterize,
  kSolarize,
  kColor,
  kContrast,
  kBrightness,
  kSharpness,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kCutout,
  kSolarizeAdd,
  kIdentity
};
const std::string& op_name(AugmentOp op);

// The op with its already-mapped argument (degrees, shear, pixels, factor, bits, threshold, addend or half
// size). Cutout needs `rng` for its centre; geometric ops fill uncovered pixels with (128, 128, 128).
void apply_op(ImageU8& image, AugmentOp op, double argument, Rng* rng = nullptr);

struct AugmentConstants {
  double cutout = 100, translate = 250;  // AutoAugment; RandAugment uses 40 and 100
};
// Level (0..10) -> argument, including the random sign of Rotate / Shear / Translate.
double level_to_argument(AugmentOp op, double level, const AugmentConstants& constants, Rng& rng);

struct AppliedOp {
  AugmentOp op;
  double argument;
};

// Picks one of the 25 sub-policies uniformly and applies each of its two ops with its probability.
std::vector<AppliedOp> auto_augment(ImageU8& image, Rng& rng, const AugmentConstants& constants = {});

// N times: one of the 16 ops or identity (1/17 each), always applied, all at magnitude M.
std::vector<AppliedOp> rand_augment(ImageU8& image, int num_layers, double magnitude, Rng& rng,
                                    const AugmentConstants& constants = {40, 100});

}  // namespace convnets
