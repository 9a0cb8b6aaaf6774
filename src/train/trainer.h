// The training loop behind `train`, `train_and_eval` and `training_benchmark`: data, mixing, TrainStep,
// schedule, EMA, progressive stages, evaluation, checkpoints with exact resume, graceful stop and logs.
#pragma once
#include <optional>

#include "data/mixing.h"
#include "infer/evaluate.h"
#include "train/train_config.h"

namespace convnets {

enum class TrainMode { kTrain, kTrainAndEval, kBenchmark };

struct TrainOutcome {
  bool interrupted = false;  // stopped by SIGTERM/SIGINT after writing a checkpoint
  int64_t updates = 0;       // optimizer updates done (whole run, including before a resume)
  double train_images_per_second = 0;
  std::optional<EvalResult> eval, eval_ema;  // the last evaluation
  std::string final_weights;                 // exported weights (better of raw / EMA when both evaluated)
};

// Progressive training (recipe-spec §2.5): the stage of an epoch and its image size, RandAugment magnitude
// and mixing strengths.
struct StagePlan {
  int64_t stage = 0;
  int64_t image_size = 0;
  double randaug_magnitude = 0, mixup_alpha = 0, cutmix_alpha = 0;
};
StagePlan stage_for_epoch(const TrainConfig& config, int64_t train_size, int64_t epoch, int64_t num_epochs);
// How the trainer mixes batches at `stage` (mixup / CutMix strengths, per example, partners, symmetric max).
MixOptions mix_options(const TrainConfig& config, const StagePlan& stage);

TrainOutcome run_training(const TrainConfig& config, TrainMode mode);

}  // namespace convnets
