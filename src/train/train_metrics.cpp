#include "train/train_metrics.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>
#include <stdexcept>

namespace convnets {

TrainMetrics::TrainMetrics(const RunDevice& device, int64_t max_nonfinite_steps)
    : device_(device), max_nonfinite_(max_nonfinite_steps) {
  begin_epoch();
}

void TrainMetrics::begin_epoch() {
  window_loss_ = torch::zeros({}, torch::dtype(torch::kFloat).device(device_.device));
  epoch_loss_ = window_loss_.clone();
  nonfinite_run_ = torch::zeros({}, torch::dtype(torch::kLong).device(device_.device));
  window_micro_ = epoch_micro_ = window_images_ = epoch_images_ = 0;
  window_start_ = epoch_start_ = Clock::now();
}

void TrainMetrics::add(const MicroStepResult& r, int64_t images) {
  // Consecutive non-finite losses, counted on the device (no synchronisation); checked at display steps.
  if (!r.skipped && max_nonfinite_ > 0)
    nonfinite_run_ = (nonfinite_run_ + 1) * torch::isfinite(r.loss).logical_not();
  window_loss_ += r.loss;
  epoch_loss_ += r.loss;
  ++window_micro_;
  ++epoch_micro_;
  window_images_ += images;
  epoch_images_ += images;
}

void TrainMetrics::time_update(int64_t updates, int64_t warmup, int64_t k, int64_t images) {
  device_.synchronize();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - step_start_).count();
  if (updates <= warmup) return;
  update_ms_.push_back(ms * static_cast<double>(k));
  timed_seconds_ += ms * 1e-3 * static_cast<double>(k);
  timed_images_ += images * k;
}

TrainMetrics::Rates TrainMetrics::take_window() {
  device_.synchronize();
  Rates r;
  r.seconds = std::chrono::duration<double>(Clock::now() - window_start_).count();
  r.images_per_second = r.seconds > 0 ? static_cast<double>(window_images_) / r.seconds : 0;
  r.loss = window_loss_.item<double>() / static_cast<double>(window_micro_);
  window_loss_.zero_();
  window_micro_ = window_images_ = 0;
  window_start_ = Clock::now();
  return r;
}

TrainMetrics::Rates TrainMetrics::epoch() const {
  device_.synchronize();
  Rates r;
  r.seconds = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  r.images_per_second = r.seconds > 0 ? static_cast<double>(epoch_images_) / r.seconds : 0;
  r.loss = epoch_micro_ ? epoch_loss_.item<double>() / static_cast<double>(epoch_micro_) : 0;
  return r;
}

void TrainMetrics::check_divergence(int64_t updates, double lr) const {
  if (max_nonfinite_ <= 0) return;
  if (const int64_t run = nonfinite_run_.item<int64_t>(); run >= max_nonfinite_) {
    char rate[32];
    std::snprintf(rate, sizeof(rate), "%.4g", lr);
    throw std::runtime_error("training diverged: the loss was NaN or infinite for the last " +
                             std::to_string(run) + " steps (update " + std::to_string(updates) +
                             ", learning rate " + rate +
                             "); lower lr_init, or raise max_nonfinite_steps. No weights were exported");
  }
}

double TrainMetrics::timed_images_per_second() const {
  return timed_seconds_ > 0 ? static_cast<double>(timed_images_) / timed_seconds_ : 0;
}

}  // namespace convnets
