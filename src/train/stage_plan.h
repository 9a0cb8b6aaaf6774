// Progressive training (EfficientNet TF2, docs/recipes.md): the run is split into n_stages stages of equal
// length; each grows the image size, the RandAugment magnitude and the mixing strengths linearly from their
// base values to the recipe's. With one stage, every epoch uses the recipe's values.
#pragma once
#include <cstdint>

#include "data/mixing.h"
#include "run/config.h"

namespace convnets {

struct StagePlan {
  int64_t stage = 0;
  int64_t image_size = 0;
  double randaug_magnitude = 0, mixup_alpha = 0, cutmix_alpha = 0;
};
// The stage of 0-based `epoch` of `num_epochs`; `train_size` is the final image size.
StagePlan stage_for_epoch(const RunConfig& config, int64_t train_size, int64_t epoch, int64_t num_epochs);
// How batches are mixed at `stage` (mixup / CutMix strengths, per example, partners, symmetric max).
MixOptions mix_options(const RunConfig& config, const StagePlan& stage);

}  // namespace convnets
