// `eval`: the raw and EMA weights of a checkpoint (or a weights file) over the validation split. Launched by
// torchrun / srun / mpirun, each rank evaluates a shard and rank 0 reports the exact totals.
#include "infer/modes.h"
#include "infer/weights_for_inference.h"
#include "run/data_setup.h"
#include "run/parallel_setup.h"
#include "run/run_logs.h"

namespace convnets {

EvalModeResult run_eval_mode(const RunConfig& config, const RunContext& context) {
  const DistEnv dist_env = run_dist_env(config);
  const RunDevice device = setup_device(config.precision, config.cpu, dist_env.local_rank);
  const std::unique_ptr<DataParallel> job = join_data_parallel(config, dist_env, device, context);
  ProcessGroup* group = job ? &job->group() : nullptr;
  const bool main_rank = !job || job->is_main();
  DiagnosticsOnly quiet(*context.console);
  Console& console = main_rank ? *context.console : quiet;
  auto split = open_split(config, false, console);
  if (!split) throw std::invalid_argument("eval needs --data_dir with a validation split");
  const int64_t records = split->size();
  const LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false, console);
  std::optional<Int8Quantization> int8;
  if (config.int8.int8) int8 = load_int8_quantization(config.output.model_dir);
  const Int8Quantization* quantization = int8 ? &*int8 : nullptr;
  RunLogs logs(config, LogAccess::kReader, main_rank, console);
  logs.parameters(config);
  SplitEvaluator evaluator(std::move(split), w.config, device, group, config.iterations.warmup_steps,
                           &console);
  console.info("evaluating " + w.source + " on " + std::to_string(records) + " records (" +
               device.describe() + (job ? ", " + std::to_string(job->size()) + " ranks" : std::string()) +
               "; " + w.batch_norm.describe() + ")");
  EvalModeResult result;
  auto report = [&](const EvalResult& r, const std::string& which) {
    nlohmann::json j = eval_report_json(r);
    j["weights"] = which;
    j["form"] = evaluator.form();
    logs.dll().log(nlohmann::json::array(), j);
  };
  if (w.ema_model) {  // EMA first, then the raw weights (as the EfficientNet recipe's eval does)
    result.ema = evaluator.evaluate(w.ema_model, quantization);
    report(*result.ema, "ema");
  }
  result.raw = evaluator.evaluate(w.model, quantization);
  report(result.raw, "raw");
  if (group) group->barrier();
  return result;
}

}  // namespace convnets
