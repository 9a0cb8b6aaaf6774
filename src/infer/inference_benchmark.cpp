// `inference_benchmark`: forward passes only over a sweep of batch sizes, on synthetic uint8 batches that
// already sit on the device (as in the seeds: this measures the model, not the input path). --int8 times the
// int8 form: the model_dir's quantization, or on random weights one calibrated on synthetic images (said so).
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>

#include "data/loader.h"
#include "infer/modes.h"
#include "infer/weights_for_inference.h"
#include "models/quantization.h"
#include "run/data_setup.h"
#include "run/inference_model.h"
#include "run/int8_calibration.h"
#include "run/parallel_setup.h"
#include "run/run_logs.h"

namespace convnets {

namespace {

// Random weights have no calibration: ranges from the synthetic images (max |x|), enough to time the int8
// kernels; the answers mean nothing.
constexpr int64_t kSyntheticCalibrationImages = 32;

Int8Quantization synthetic_int8_quantization(const LoadedWeights& w, const RunConfig& config,
                                             const RunDevice& device, Console& console) {
  console.notice("--int8 on random weights: calibrated on " + std::to_string(kSyntheticCalibrationImages) +
                 " synthetic images (max |x|) to time the int8 kernels; its answers mean nothing");
  return {calibrate_on_synthetic(config, {"random init", inference_graph(*w.model, config.model.arch)},
                                 device, kSyntheticCalibrationImages),
          "synthetic calibration"};
}

}  // namespace

std::vector<InferenceBenchmarkRow> run_inference_benchmark(const RunConfig& config,
                                                           const RunContext& context) {
  require_single_process(config, "inference_benchmark");
  Console& console = *context.console;
  const RunDevice device = setup_device(config.precision, config.cpu);
  const LoadedWeights w = load_for_inference(config, device, /*allow_random=*/true, console);
  const ResolvedData data = resolve_data(w.config);
  RunLogs logs(config, LogAccess::kReader, /*write_files=*/true, console);
  std::optional<Int8Quantization> int8;
  if (config.int8.int8) {
    if (w.source == "random init") {
      int8 = synthetic_int8_quantization(w, config, device, console);
    } else {
      int8 = load_int8_quantization(config.output.model_dir);
    }
  }
  InferenceModel form(w.model, config.model.arch, device, config.precision, config.cpu, &console,
                      int8 ? &*int8 : nullptr);
  logs.parameters(config);
  std::vector<int64_t> sizes = config.benchmark.batch_sizes;
  if (sizes.empty()) sizes.push_back(config.eval_batch_size());
  const IterationConfig& it = config.iterations;
  const int64_t steps = it.iter_unit == IterUnit::kBatch ? it.num_iter : 100;
  std::vector<InferenceBenchmarkRow> rows;
  torch::NoGradGuard no_grad;
  console.info("inference_benchmark " + config.model.arch + " at " + std::to_string(data.eval_size) + "x" +
               std::to_string(data.eval_size) + " on " + device.describe() + ", " + form.describe() + ", " +
               std::to_string(at::get_num_threads()) + " threads: " + std::to_string(it.warmup_steps) +
               " warm-up + " + std::to_string(steps) + " timed batches per batch size");
  for (int64_t bs : sizes) {
    SyntheticLoader synthetic(bs, static_cast<int>(data.eval_size), config.model.num_classes,
                              static_cast<uint64_t>(it.seed));
    const torch::Tensor u8 = synthetic.next(0, 0).images.to(device.device);
    std::vector<double> ms;
    for (int64_t i = 0; i < it.warmup_steps + steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      torch::Tensor logits = form.forward_images(u8, data.mean, data.std);
      device.synchronize();
      const double t =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (i >= it.warmup_steps) ms.push_back(t);
    }
    InferenceBenchmarkRow row;
    row.batch_size = bs;
    row.latency = latency_stats(ms);
    row.images_per_second = row.latency.avg > 0 ? 1e3 * static_cast<double>(bs) / row.latency.avg : 0;
    logs.dll().log(nlohmann::json::array({bs}), {{"batch_size", bs},
                                                 {"form", form.describe()},
                                                 {"throughput", row.images_per_second},
                                                 {"latency_avg", row.latency.avg},
                                                 {"latency_p50", row.latency.p50},
                                                 {"latency_p90", row.latency.p90},
                                                 {"latency_p95", row.latency.p95},
                                                 {"latency_p99", row.latency.p99}});
    rows.push_back(row);
  }
  char line[160];
  std::snprintf(line, sizeof(line), "%8s %12s %10s %10s %10s %10s %10s", "batch", "images/s", "avg ms",
                "p50 ms", "p90 ms", "p95 ms", "p99 ms");
  std::string table = line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof(line), "\n%8lld %12.1f %10.2f %10.2f %10.2f %10.2f %10.2f",
                  static_cast<long long>(r.batch_size), r.images_per_second, r.latency.avg, r.latency.p50,
                  r.latency.p90, r.latency.p95, r.latency.p99);
    table += line;
  }
  console.info(table);
  return rows;
}

}  // namespace convnets
