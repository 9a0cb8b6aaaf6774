// SyncBatchNorm for small per-GPU batches: in training mode, BatchNorm's batch statistics are taken over the
// global batch (every rank's images), as one process with the whole batch would; the running statistics then
// agree on every rank. Eval mode is plain BatchNorm (running statistics).
//
// It belongs to the model it is set on: use_sync_batch_norm() hands the training-mode forward of that
// model's BatchNorm layers (models/layers.h) to a SyncBatchStatistics; their parameters, buffers and
// state-dict names stay as they are, and other models in the process are not affected.
#pragma once
#include <memory>

#include "dist/process_group.h"
#include "models/layers.h"

namespace convnets {

// BatchNorm2d training-mode forward with statistics over all ranks. Gradients flow through the cross-rank
// sums (their backward is an all-reduce of the incoming gradients), so the averaged gradients equal those of
// one process on the global batch.
class SyncBatchStatistics : public BatchStatistics {
 public:
  explicit SyncBatchStatistics(ProcessGroup& group) : group_(group) {}
  torch::Tensor forward(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) override;

 private:
  ProcessGroup& group_;
};

// Every BatchNorm of `model` synchronises its training-mode statistics over `group` (which must outlive the
// model's use of it: DataParallel owns both). Returns the strategy set (shared by the layers).
std::shared_ptr<SyncBatchStatistics> use_sync_batch_norm(torch::nn::Module& model, ProcessGroup& group);

}  // namespace convnets
