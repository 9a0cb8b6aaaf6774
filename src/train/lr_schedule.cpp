#include "train/lr_schedule.h"

#include <cmath>
#include <stdexcept>

#include "train/train_config.h"

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

LrSchedule LrSchedule::resnet_tf1(double base, int64_t steps_per_epoch, double warmup_epochs,
                                  int64_t total_steps, bool cosine) {
  LrSchedule s;
  s.base = base;
  s.warmup_steps = static_cast<int64_t>(static_cast<double>(steps_per_epoch) * warmup_epochs);
  s.clock_after_warmup = false;
  if (cosine) {
    s.kind = Kind::kCosine;
    s.decay_steps = total_steps;
  } else {
    s.kind = Kind::kStep;
    for (int e : {30, 60, 80, 90}) s.boundaries.push_back(steps_per_epoch * e);
    s.multipliers = {1.0, 0.1, 0.01, 0.001, 1e-4};
  }
  return s;
}

LrSchedule LrSchedule::efficientnet_tf2(double base, int64_t updates_per_epoch, double warmup_epochs,
                                        int64_t max_epochs, const std::string& decay) {
  LrSchedule s;
  s.base = base;
  s.warmup_steps = static_cast<int64_t>(warmup_epochs * static_cast<double>(updates_per_epoch));
  s.clock_after_warmup = true;
  if (decay == "cosine") {
    s.kind = Kind::kCosine;
    s.decay_steps =
        static_cast<int64_t>((static_cast<double>(max_epochs) - warmup_epochs) * updates_per_epoch);
  } else if (decay == "exponential") {
    s.kind = Kind::kExponential;
    s.decay_rate = 0.97;
    s.decay_interval = 2.4 * static_cast<double>(updates_per_epoch);
  } else {
    throw std::invalid_argument("lr decay '" + decay + "' is not one of: cosine, exponential");
  }
  return s;
}

LrSchedule make_schedule(const TrainConfig& c, double base, int64_t updates_per_epoch,
                         int64_t total_updates) {
  LrSchedule s;
  s.base = base;
  s.warmup_steps = static_cast<int64_t>(c.lr_warmup_epochs * static_cast<double>(updates_per_epoch));
  s.clock_after_warmup = c.lr_clock == "after_warmup";
  if (c.lr_schedule == "cosine") {
    s.kind = LrSchedule::Kind::kCosine;
    // The cosine reaches 0 at the last update with either clock.
    s.decay_steps =
        std::max<int64_t>(1, s.clock_after_warmup ? total_updates - s.warmup_steps : total_updates);
  } else if (c.lr_schedule == "step") {
    s.kind = LrSchedule::Kind::kStep;
    double m = 1.0;
    s.multipliers.push_back(m);
    for (double e : c.lr_step_epochs) {
      s.boundaries.push_back(static_cast<int64_t>(e * static_cast<double>(updates_per_epoch)));
      m *= c.lr_step_factor;
      s.multipliers.push_back(m);
    }
  } else if (c.lr_schedule == "exponential") {
    s.kind = LrSchedule::Kind::kExponential;
    s.decay_rate = c.lr_decay_rate;
    s.decay_interval = c.lr_decay_epochs * static_cast<double>(updates_per_epoch);
  } else {
    s.kind = LrSchedule::Kind::kConstant;
  }
  return s;
}

}  // namespace convnets
