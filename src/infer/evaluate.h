// Evaluation over a whole split: top-1/top-5 accuracy and cross-entropy over every image exactly once, eval
// throughput and per-batch latency.
#pragma once
#include <functional>

#include "data/loader.h"
#include "dist/process_group.h"
#include "infer/latency.h"
#include "models/layers.h"
#include "train/run_setup.h"

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
};

// Data parallel: each rank evaluated its shard; the sums are the whole split's exact figures (throughput:
// the sum over ranks; latency: this rank's).
EvalResult sum_over_ranks(const EvalResult& local, ProcessGroup& group);

EvalResult evaluate(ConvNetImpl& model, Loader& loader, const RunDevice& device, const ResolvedData& data,
                    const EvalOptions& options = {});

}  // namespace convnets
