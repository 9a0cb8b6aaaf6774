// Everything a training checkpoint holds and the objects that own it: the model, the optimizer and its
// slots, the fp16 loss scaler, the EMA, the train step (its update counter), the RNG streams and the data
// position. This is the only code that converts that state to and from checkpoint sections: the schema is
// written and read in one place (README, Checkpoints).
#pragma once
#include <memory>
#include <optional>

#include "dist/grad_reducer.h"
#include "models/layers.h"
#include "run/config.h"
#include "run/run_device.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/optimizers.h"
#include "train/train_step.h"

namespace convnets {

// Where a checkpoint is taken: `micro_batch` micro-batches into 0-based `epoch` (0 at an epoch boundary).
struct TrainPosition {
  int64_t epoch = 0, micro_batch = 0, updates = 0;
  int64_t updates_per_epoch = 0, total_updates = 0;
  // The best eval top-1 so far, so best.pt is only replaced by a better one.
  std::optional<double> best_top1 = {};
};

// What resuming restored.
struct RestoredState {
  ResumePoint at;
  std::optional<double> best_top1;
};

class TrainState {
 public:
  // The optimisation state of `model` (built on its device; data parallel: already holding rank 0's
  // weights): the config's optimizer, a loss scaler when the device needs one (fp16), the EMA when
  // ema_decay > 0, and the step (accumulation, clipping, autocast) whose gradients `reducer` averages
  // across ranks (null for one process).
  TrainState(ConvNetPtr model, const RunConfig& config, const RunDevice& device, GradReducer* reducer);
  TrainState(const TrainState&) = delete;
  TrainState& operator=(const TrainState&) = delete;

  ConvNetImpl& model() { return *model_; }
  const ConvNetPtr& model_ptr() const { return model_; }
  ModelEma* ema() { return ema_.get(); }
  bool has_scaler() const { return scaler_ != nullptr; }
  TrainStep& step() { return step_; }
  int64_t updates() const { return step_.updates(); }

  // The checkpoint sections (CPU copies). `rank_rng_states`: one row per rank when data parallel (each
  // rank's CPU generator), undefined for one process (this process's generator).
  TensorSections to_sections(const TrainPosition& at, const torch::Tensor& rank_rng_states = {}) const;

  // Validates every field against `expect` (check_training_checkpoint), then loads model, optimizer, EMA,
  // scaler, the update counter and this rank's RNG stream (a checkpoint from another world size restarts
  // every rank's stream from the first). Throws naming `path`; CheckpointMismatch when the run's epoch
  // length changed.
  RestoredState load(const TensorSections& checkpoint, const std::string& path,
                     const ResumeExpectations& expect, int rank, int world);

 private:
  ConvNetPtr model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<ModelEma> ema_;
  TrainStep step_;
};

}  // namespace convnets
