// Checkpoints of a running training: resuming from the newest checkpoint in model_dir that passes
// validation against this run, and saving one at a position of the run.
//
// Resume:
// A damaged or crafted checkpoint is reported by name and the next older one is tried; one written by a
// run with other settings (another epoch length) stops the run. Rank 0 chooses, every rank loads the same
// file (model_dir on a filesystem all nodes share).
#pragma once
#include <optional>
#include <string>

#include "train/checkpoint.h"
#include "train/epoch_plan.h"
#include "train/train_session.h"
#include "train/train_state.h"

namespace convnets {

struct Resumed {
  std::optional<std::string> path;  // the checkpoint resumed from; nullopt: a fresh start
  int64_t epoch = 0, micro_batch = 0;
};

// `checkpoints`: rank 0's manager of model_dir (its best metric is restored); null on other ranks.
Resumed resume_training(TrainState& state, CheckpointManager* checkpoints, const EpochPlan& plan,
                        TrainSession& session);

// Saves the state at `at` (every rank calls this at the same point: BatchNorm statistics are averaged and
// every rank's RNG stream gathered; rank 0 writes checkpoint_e<epochs_done>_u<updates>.pt, and best.pt when
// `metric` is the best so far). Returns the path written ("" on other ranks).
std::string save_training_checkpoint(TrainState& state, CheckpointManager* checkpoints, TrainPosition at,
                                     int64_t epochs_done, std::optional<double> metric,
                                     const WeightsMetadata& metadata, TrainSession& session);

}  // namespace convnets
