// What a training loop measures: loss and throughput of the display window and of the epoch (summed on the
// device, read at display steps only, so steps do not synchronise), the run of consecutive non-finite
// losses that stops a diverged run, and the timed updates of training_benchmark.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "run/run_device.h"
#include "train/train_step.h"
#include "util/latency.h"

namespace convnets {

class TrainMetrics {
 public:
  TrainMetrics(const RunDevice& device, int64_t max_nonfinite_steps);

  void begin_epoch();
  void begin_step() { step_start_ = Clock::now(); }
  // After every micro-batch of `images` images.
  void add(const MicroStepResult& result, int64_t images);
  // training_benchmark: the update just done took since begin_step(); the first `warmup` are left out.
  void time_update(int64_t updates, int64_t warmup, int64_t accumulation_steps, int64_t images);

  struct Rates {
    double loss = 0;               // mean loss per micro-batch
    double images_per_second = 0;  // this process
    double seconds = 0;
  };
  // The window since the last call (waits for the device), then starts a new one.
  Rates take_window();
  // The epoch so far (waits for the device).
  Rates epoch() const;

  // Throws "training diverged" (naming the update, the learning rate and the keys to change) when the last
  // max_nonfinite_steps losses were all NaN or infinite. Reads one device scalar.
  void check_divergence(int64_t updates, double lr) const;

  // training_benchmark: throughput over the timed updates, and their latency (ms, per update).
  double timed_images_per_second() const;
  LatencyStats timed_latency() const { return latency_stats(update_ms_); }

 private:
  using Clock = std::chrono::steady_clock;
  RunDevice device_;
  int64_t max_nonfinite_;
  torch::Tensor window_loss_, epoch_loss_, nonfinite_run_;
  int64_t window_micro_ = 0, epoch_micro_ = 0, window_images_ = 0, epoch_images_ = 0;
  Clock::time_point window_start_, epoch_start_, step_start_;
  std::vector<double> update_ms_;
  double timed_seconds_ = 0;
  int64_t timed_images_ = 0;
};

}  // namespace convnets
