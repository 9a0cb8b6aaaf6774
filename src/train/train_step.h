// One optimisation step from micro-batches: loss / k per micro-batch, gradients summed over k micro-batches,
// then (AMP) unscale + skip on overflow, global-norm clipping, the optimizer update and the EMA update.
// Decision: the update happens after every k-th micro-batch; the TF2 recipe's first update after a single
// micro-batch (its local step counter starts at 0) is not copied.
#pragma once
#include <optional>

#include "dist/grad_reducer.h"
#include "models/layers.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/optimizers.h"

namespace convnets {

struct TrainStepOptions {
  int accumulation_steps = 1;
  double grad_clip_norm = 0.0;  // 0: no clipping
  // Autocast for the forward pass: kBFloat16 or kHalf (use a GradScaler with half), nullopt: fp32.
  std::optional<torch::ScalarType> autocast_dtype = std::nullopt;
};

struct MicroStepResult {
  torch::Tensor loss;    // this micro-batch's loss (detached, on the device; unscaled, not divided by k)
  bool updated = false;  // an optimizer update happened after this micro-batch
  bool skipped = false;  // the update was skipped (non-finite gradients)
  int64_t updates = 0;   // optimizer updates so far (the LR / EMA clock)
};

class TrainStep {
 public:
  TrainStep(ConvNetPtr model, Optimizer& optimizer, const TrainStepOptions& options,
            GradScaler* scaler = nullptr, ModelEma* ema = nullptr);
  // `images`: normalised float NCHW; `targets`: soft targets [N, K]; `lr` for the update this may trigger.
  MicroStepResult micro_step(const torch::Tensor& images, const torch::Tensor& targets, double lr);
  int64_t updates() const { return updates_; }
  // Resuming: the update counter of the checkpoint (only at an update boundary).
  void set_updates(int64_t updates) { updates_ = updates; }
  // Data parallel: gradients are averaged across ranks during the backward of each update's last
  // micro-batch (the earlier ones only accumulate), before unscaling, clipping and the update.
  void set_reducer(GradReducer* reducer) { reducer_ = reducer; }

 private:
  ConvNetPtr model_;
  Optimizer& optimizer_;
  TrainStepOptions options_;
  GradScaler* scaler_;
  ModelEma* ema_;
  GradReducer* reducer_ = nullptr;
  std::vector<torch::Tensor> params_;
  int micro_ = 0;
  int64_t updates_ = 0;
};

}  // namespace convnets
