// Data-parallel gradient averaging, overlapped with backward: parameters are grouped into buckets of about
// `bucket_bytes` in reverse registration order (the order backward produces their gradients). A hook on
// each parameter's gradient accumulator counts arrivals; when a bucket is complete it is flattened, divided
// by the world size and all-reduced asynchronously. Buckets launch in index order on every rank, so the
// collectives match across processes. finish() waits for all of them and writes the averages back.
//
// Gradient accumulation: set_sync(false) for the micro-batches before the last of an update; their
// gradients only accumulate locally, and the last micro-batch's backward communicates the sum.
#pragma once
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/process_group.h"

namespace convnets {

// The dtype gradients travel in between ranks (the seeds' fp16 allreduce compression); kNone: their own.
enum class GradCompression { kNone, kFp16, kBf16 };

struct GradReducerOptions {
  int64_t bucket_bytes = 25 * 1024 * 1024;
  GradCompression compression = GradCompression::kNone;
};

class GradReducer {
 public:
  GradReducer(std::vector<torch::Tensor> params, ProcessGroup& group, const GradReducerOptions& options);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Whether the next backward ends an update (and so communicates).
  void set_sync(bool sync) { sync_ = sync; }
  // Launches buckets whose gradients never arrived (unused parameters count as zero), waits for every
  // bucket and writes the averaged gradients into the parameters' .grad.
  void finish();
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<size_t> params;
    size_t arrived = 0;
    torch::Tensor flat;
    std::optional<ProcessGroup::Pending> pending;
  };
  void on_grad_ready(size_t param);
  void launch(size_t bucket);

  std::vector<torch::Tensor> params_;
  ProcessGroup& group_;
  GradReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  size_t next_launch_ = 0;
  bool sync_ = true;
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
};

// Rank 0's parameters and buffers to every rank (start of training, after a resume).
void broadcast_module_state(torch::nn::Module& module, ProcessGroup& group);
// Averages floating-point buffers (BatchNorm running statistics) across ranks, before eval and checkpoints.
void average_module_buffers(torch::nn::Module& module, ProcessGroup& group);
// Averages the given floating-point tensors across ranks, in place.
void average_tensors(const std::vector<torch::Tensor>& tensors, ProcessGroup& group);

}  // namespace convnets
