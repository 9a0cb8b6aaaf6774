// SyncBatchNorm for small per-GPU batches: in training mode, BatchNorm's batch statistics are taken over the
// global batch (every rank's images), as one process with the whole batch would; the running statistics then
// agree on every rank. Eval mode is plain BatchNorm (running statistics).
//
// It replaces no module: the zoo's BatchNorm2d layers (and their state-dict names) stay as they are, and a
// process-wide hook on models/layers.h's batch_norm() routes their training-mode forwards here.
#pragma once
#include <torch/nn/modules/batchnorm.h>

#include "dist/process_group.h"
#include "models/layers.h"

namespace convnets {

// BatchNorm2d forward with statistics over all ranks (training mode; eval mode falls back to bn.forward).
// Gradients flow through the cross-rank sums (their backward is an all-reduce of the incoming gradients), so
// the averaged gradients equal those of one process on the global batch.
torch::Tensor sync_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, ProcessGroup& group);

// While alive, every batch_norm() in this process is synchronized over `group`.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(ProcessGroup& group);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  BatchNormHook previous_;
};

}  // namespace convnets
