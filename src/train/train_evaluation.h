// Evaluation inside train_and_eval: the raw weights and, with EMA, the average, over the whole eval split
// (each rank its shard, exact totals), logged to DLLogger and TensorBoard.
#pragma once
#include <memory>
#include <optional>

#include "run/evaluate.h"
#include "train/qat_training.h"
#include "train/train_session.h"
#include "train/train_state.h"

namespace convnets {

struct TrainEvaluation {
  EvalResult raw;
  std::optional<EvalResult> ema;
  double best_top1() const { return ema ? std::max(raw.top1, ema->top1) : raw.top1; }
};

class TrainEvaluator {
 public:
  // `qat`: the run's quantization-aware training, which the EMA's model runs with too (nullptr: none).
  TrainEvaluator(std::shared_ptr<const ImageSource> split, const RunConfig& config, TrainSession& session,
                 const QatTraining* qat = nullptr);
  // After `epochs_done` epochs. The EMA's model is built at the first evaluation (its initialisation draws
  // from the RNG at that point, as every run and resume does).
  TrainEvaluation evaluate(TrainState& state, int64_t epochs_done);

 private:
  const RunConfig& config_;
  TrainSession& session_;
  SplitEvaluator evaluator_;
  const QatTraining* qat_;
  ConvNetPtr ema_model_;
};

}  // namespace convnets
