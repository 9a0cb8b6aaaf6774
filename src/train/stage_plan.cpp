#include "train/stage_plan.h"

#include <algorithm>

namespace convnets {

StagePlan stage_for_epoch(const RunConfig& config, int64_t train_size, int64_t epoch, int64_t num_epochs) {
  const ProgressiveConfig& c = config.progressive;
  StagePlan p;
  const int64_t n = std::max<int64_t>(1, c.n_stages);
  if (n == 1) {
    p.image_size = train_size;
    p.randaug_magnitude = config.train_input.randaug_magnitude;
    p.mixup_alpha = config.mixing.mixup_alpha;
    p.cutmix_alpha = config.mixing.cutmix_alpha;
    return p;
  }
  const int64_t per_stage = std::max<int64_t>(1, num_epochs / n);
  p.stage = std::min(epoch / per_stage, n - 1);
  const double s = static_cast<double>(p.stage);
  const double nd = static_cast<double>(n);
  // Stage 0 already moves one step away from base_image_size; the strengths start at their base values.
  p.image_size = static_cast<int64_t>(static_cast<double>(c.base_image_size) +
                                      static_cast<double>(train_size - c.base_image_size) * (s + 1) / nd);
  auto lin = [&](double from, double to) { return from + (to - from) * s / (nd - 1); };
  p.randaug_magnitude = lin(c.base_randaug_magnitude, config.train_input.randaug_magnitude);
  p.mixup_alpha = lin(c.base_mixup, config.mixing.mixup_alpha);
  p.cutmix_alpha = lin(c.base_cutmix, config.mixing.cutmix_alpha);
  return p;
}

MixOptions mix_options(const RunConfig& config, const StagePlan& stage) {
  MixOptions mix;
  mix.mixup_alpha = stage.mixup_alpha;
  mix.cutmix_alpha = stage.cutmix_alpha;
  mix.per_example = config.mixing.mix_per_example;
  mix.permute_partners = config.mixing.mix_partner == MixPartner::kPermute;
  mix.symmetric_max = config.mixing.mix_symmetric_max;
  return mix;
}

}  // namespace convnets
