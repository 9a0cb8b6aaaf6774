// Learning-rate schedules of the recipes, evaluated per optimizer step (docs/recipes.md: ResNet-50 TF1 and
// EfficientNet TF2 schedules and their clocks).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "run/config.h"

namespace convnets {

// Linear scaling: lr_init per `reference_batch` images (256 for ResNet, 128 for EfficientNet), global batch
// including gradient accumulation.
double scaled_learning_rate(double lr_init, int64_t global_batch, int64_t reference_batch);

struct LrSchedule {
  using Kind = LrScheduleKind;
  Kind kind = Kind::kCosine;
  double base = 0.1;         // already scaled
  int64_t warmup_steps = 0;  // lr = base * step / warmup_steps before (starts at 0)
  // Clock: false = ResNet TF1 (the decay sees the global step from 0), true = EfficientNet TF2 (the decay
  // sees step - warmup_steps).
  bool clock_after_warmup = false;
  int64_t decay_steps = 1;          // cosine horizon T
  std::vector<int64_t> boundaries;  // step: piecewise constant, value i while step <= boundaries[i]
  std::vector<double> multipliers;  //   (boundaries.size() + 1 values, times base)
  double decay_rate = 0.97;         // exponential: base * rate^floor(t / decay_interval)
  double decay_interval = 1;

  double at(int64_t step) const;

  // The schedule a run trains with: the config's kind and clock, warmup in updates, the cosine reaching 0 at
  // the last update with either clock (ResNet TF1: the decay sees step 0..T; EfficientNet TF2: step -
  // warmup). `base` is the scaled learning rate.
  static LrSchedule from_config(const ScheduleConfig& config, double base, int64_t updates_per_epoch,
                                int64_t total_updates);
};

}  // namespace convnets
