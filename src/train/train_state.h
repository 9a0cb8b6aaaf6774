// Everything a training checkpoint holds (model, EMA, optimizer slots, loss scaler, RNG streams, the data
// position), and the only code that converts it to and from checkpoint sections: the schema is written and
// read in this one place (README, Checkpoints).
#pragma once
#include <optional>

#include "models/layers.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/optimizers.h"

namespace convnets {

// Where a checkpoint is taken: `micro_batch` micro-batches into 0-based `epoch` (0 at an epoch boundary).
struct TrainPosition {
  int64_t epoch = 0, micro_batch = 0, updates = 0;
  int64_t updates_per_epoch = 0, total_updates = 0;
  std::optional<double> best_top1;  // the best eval top-1 so far, so best.pt is only replaced by a better one
};

// What resuming restored.
struct RestoredState {
  ResumePoint at;
  std::optional<double> best_top1;
};

class TrainState {
 public:
  // The parts a run has; `ema` and `scaler` may be null. The objects outlive this view.
  TrainState(ConvNetImpl& model, Optimizer& optimizer, ModelEma* ema, GradScaler* scaler)
      : model_(model), optimizer_(optimizer), ema_(ema), scaler_(scaler) {}

  // The checkpoint sections (CPU copies). `rank_rng_states`: one row per rank when data parallel (each
  // rank's CPU generator), undefined for one process (this process's generator).
  TensorSections to_sections(const TrainPosition& at, const torch::Tensor& rank_rng_states = {}) const;

  // Validates every field against `expect` (check_training_checkpoint), then loads model, optimizer, EMA,
  // scaler and this rank's RNG stream (a checkpoint from another world size restarts every rank's stream
  // from the first). Throws naming `path`; CheckpointMismatch when the run's epoch length changed.
  RestoredState load(const TensorSections& checkpoint, const std::string& path,
                     const ResumeExpectations& expect, int rank, int world) const;

 private:
  ConvNetImpl& model_;
  Optimizer& optimizer_;
  ModelEma* ema_;
  GradScaler* scaler_;
};

}  // namespace convnets
