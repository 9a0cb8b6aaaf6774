// The training loop behind `train`, `train_and_eval` and `training_benchmark`: the batches of each epoch
// through the train step under the LR schedule, progressive stages, evaluation, checkpoints with exact
// resume, graceful stop and logs. docs/architecture.md follows one batch through it.
#pragma once
#include <optional>
#include <string>

#include "run/config.h"
#include "run/evaluate.h"
#include "run/run_context.h"
#include "train/train_session.h"

namespace convnets {

struct TrainOutcome {
  bool interrupted = false;  // stopped by SIGTERM/SIGINT after writing a checkpoint
  int64_t updates = 0;       // optimizer updates done (whole run, including before a resume)
  double train_images_per_second = 0;
  std::optional<EvalResult> eval, eval_ema;  // the last evaluation
  std::string final_weights;                 // exported weights (better of raw / EMA when both evaluated)
};

TrainOutcome run_training(const RunConfig& config, TrainMode mode, const RunContext& context = {});

}  // namespace convnets
