#include "train/train_evaluation.h"

#include "run/model_setup.h"
#include "util/state_dict.h"

namespace convnets {

TrainEvaluator::TrainEvaluator(std::shared_ptr<const ImageSource> split, const RunConfig& config,
                               TrainSession& session, const QatTraining* qat)
    : config_(config),
      session_(session),
      evaluator_(std::move(split), config, session.device(), session.group(), 0, &session.console()),
      qat_(qat) {}

TrainEvaluation TrainEvaluator::evaluate(TrainState& state, int64_t epochs_done) {
  RunLogs& logs = session_.logs();
  const int64_t step = state.updates();
  session_.average_buffers(state.ema() ? state.ema()->state() : NamedTensors{});
  TrainEvaluation result;
  result.raw = evaluator_.evaluate(state.model_ptr());
  logs.scalar("eval/top1", result.raw.top1, step);
  logs.scalar("eval/top5", result.raw.top5, step);
  logs.scalar("eval/loss", result.raw.loss, step);
  nlohmann::json j = eval_report_json(result.raw);
  if (state.ema()) {
    if (!ema_model_) {
      ema_model_ = build_model(config_, session_.device().device);
      if (qat_) qat_->attach(*ema_model_);
    }
    load_state_dict(*ema_model_, state.ema()->state());
    result.ema = evaluator_.evaluate(ema_model_);
    logs.scalar("eval_ema/top1", result.ema->top1, step);
    logs.scalar("eval_ema/top5", result.ema->top5, step);
    j.update(eval_report_json(*result.ema, "ema_"));
  }
  logs.dll().log(nlohmann::json::array({epochs_done}), j);
  return result;
}

}  // namespace convnets
