#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace convnets {

double scaled_learning_rate(double lr_init, int64_t global_batch, int64_t reference_batch) {
  return lr_init * static_cast<double>(global_batch) / static_cast<double>(reference_batch);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return base * static_cast<double>(step) / static_cast<double>(warmup_steps);
  const int64_t t = clock_after_warmup ? step - warmup_steps : step;
  switch (kind) {
    case Kind::kConstant:
      return base;
    case Kind::kCosine: {
      const double progress =
          static_cast<double>(std::min(t, decay_steps)) / static_cast<double>(decay_steps);
      return base * 0.5 * (1.0 + std::cos(M_PI * progress));
    }
    case Kind::kStep: {  // tf.train.piecewise_constant: values[i] while t <= boundaries[i]
      size_t i = 0;
      while (i < boundaries.size() && t > boundaries[i]) ++i;
      return base * multipliers.at(i);
    }
    case Kind::kExponential:
      return base * std::pow(decay_rate, std::floor(static_cast<double>(t) / decay_interval));
  }
  return base;
}

LrSchedule LrSchedule::from_config(const ScheduleConfig& c, double base, int64_t updates_per_epoch,
                                   int64_t total_updates) {
  LrSchedule s;
  s.base = base;
  s.kind = c.lr_schedule;
  s.warmup_steps = static_cast<int64_t>(c.lr_warmup_epochs * static_cast<double>(updates_per_epoch));
  s.clock_after_warmup = c.lr_clock == LrClock::kAfterWarmup;
  switch (c.lr_schedule) {
    case Kind::kCosine:
      // The cosine reaches 0 at the last update with either clock.
      s.decay_steps =
          std::max<int64_t>(1, s.clock_after_warmup ? total_updates - s.warmup_steps : total_updates);
      break;
    case Kind::kStep: {
      double m = 1.0;
      s.multipliers.push_back(m);
      for (double e : c.lr_step_epochs) {
        s.boundaries.push_back(static_cast<int64_t>(e * static_cast<double>(updates_per_epoch)));
        m *= c.lr_step_factor;
        s.multipliers.push_back(m);
      }
      break;
    }
    case Kind::kExponential:
      s.decay_rate = c.lr_decay_rate;
      s.decay_interval = c.lr_decay_epochs * static_cast<double>(updates_per_epoch);
      break;
    case Kind::kConstant:
      break;
  }
  return s;
}

}  // namespace convnets
