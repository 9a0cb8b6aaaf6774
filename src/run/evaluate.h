// Evaluation over a whole split: top-1/top-5 accuracy and cross-entropy over every image exactly once, eval
// throughput and per-batch latency. Shared by train_and_eval and eval; both report it the same way
// (eval_report_json).
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/loader.h"
#include "dist/process_group.h"
#include "models/layers.h"
#include "run/data_setup.h"
#include "run/inference_model.h"
#include "run/run_device.h"
#include "util/latency.h"

namespace convnets {

struct EvalResult {
  int64_t images = 0;           // evaluated
  int64_t skipped_records = 0;  // bad records left out (each named in a warning)
  double top1 = 0, top5 = 0;    // fractions
  double loss = 0;              // mean cross-entropy (no smoothing)
  double images_per_second = 0;
  LatencyStats latency;  // per batch, after `warmup_batches`
  // Exact sums, for reductions across processes.
  int64_t correct1 = 0, correct5 = 0;
  double loss_sum = 0;
};

struct EvalOptions {
  int64_t warmup_batches = 0;                           // left out of throughput and latency
  std::function<void(int64_t, int64_t)> on_batch = {};  // (batches done, total)
  bool allow_empty_shard = false;  // data parallel: a rank may hold no images; the sum over ranks may not
  std::string split_name = "the eval split";  // named in the error when no image could be evaluated
};

// How many rows of `logits` [N, C] have their label (`labels` [N]) as the best class, and among the best
// min(5, C) classes. Exact counts (int64 tensors on the logits' device, so evaluation syncs once at the end).
struct TopkHits {
  torch::Tensor top1, top5;
};
TopkHits count_topk_hits(const torch::Tensor& logits, const torch::Tensor& labels);

// Data parallel: each rank evaluated its shard; the sums are the whole split's exact figures (throughput:
// the sum over ranks; latency: this rank's).
EvalResult sum_over_ranks(const EvalResult& local, ProcessGroup& group);

EvalResult evaluate(InferenceModel& model, Loader& loader, const RunDevice& device, const ResolvedData& data,
                    const EvalOptions& options = {});

// The eval split of a run, read by this rank (its shard when data parallel), evaluated model after model
// with exact totals over every rank.
class SplitEvaluator {
 public:
  // `group`: null for one process.
  SplitEvaluator(std::shared_ptr<const ImageSource> split, const RunConfig& config, const RunDevice& device,
                 ProcessGroup* group, int64_t warmup_batches = 0, Console* console = nullptr);
  // The model's current weights, in the form the configuration asks for (inference_form), or quantized
  // with `int8` (which must outlive the evaluator).
  EvalResult evaluate(const ConvNetPtr& model, const Int8Quantization* int8 = nullptr);
  // The form the last evaluation ran ("inference form (...)", "eager model").
  const std::string& form() const { return form_; }
  int64_t batches_per_epoch() const { return loader_.batches_per_epoch(); }

 private:
  RunDevice device_;
  ResolvedData data_;
  std::string arch_;
  PrecisionConfig precision_;
  CpuConfig cpu_;
  ProcessGroup* group_;
  Console* console_;
  Loader loader_;
  EvalOptions options_;
  std::string form_;
};

// The DLLogger / JSON form of a result, every key prefixed (e.g. "ema_"): images, skipped_records,
// top1_accuracy, top5_accuracy, eval_loss, eval_throughput, eval_latency_{avg,p50,p90,p95,p99}.
nlohmann::json eval_report_json(const EvalResult& result, const std::string& prefix = "");

}  // namespace convnets
