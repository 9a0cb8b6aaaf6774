// One data-parallel job as one object: the process group, the gradient reducer on a model's trainable
// parameters and (optionally) SyncBatchNorm on that model's BatchNorm layers. It owns their lifetimes, so
// the reducer's hooks and the model's synchronised BatchNorm never outlive the group they talk through.
#pragma once
#include <memory>
#include <string>

#include "dist/grad_reducer.h"
#include "dist/process_group.h"
#include "dist/sync_batch_norm.h"
#include "util/state_dict.h"

namespace convnets {

struct DataParallelOptions {
  ProcessGroupOptions group;
  GradReducerOptions reducer;
  bool sync_batch_norm = false;
};

class DataParallel {
 public:
  // Joins the other ranks (blocks until every rank is there, or the timeout passes).
  DataParallel(const DistEnv& env, const torch::Device& device, const DataParallelOptions& options);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  ProcessGroup& group() { return *group_; }
  int rank() const { return group_->rank(); }
  int size() const { return group_->size(); }
  bool is_main() const { return group_->is_main(); }

  // Trains `model` data parallel: rank 0's parameters and buffers go to every rank, its trainable
  // parameters' gradients are averaged during backward, and with sync_batch_norm its BatchNorm layers take
  // their statistics over every rank's batch. The model is kept alive until this object goes.
  void attach(std::shared_ptr<torch::nn::Module> model);
  GradReducer* reducer() { return reducer_.get(); }
  bool synchronises_batch_norm() const { return sync_ != nullptr; }

  // Averages the model's floating-point buffers (BatchNorm statistics) and the given running statistics
  // (an EMA's) across ranks: before evaluation and checkpoints, so every rank holds the same numbers.
  void average_buffers(const NamedTensors& more_running_statistics = {});

 private:
  std::unique_ptr<ProcessGroup> group_;
  std::shared_ptr<torch::nn::Module> model_;
  std::shared_ptr<SyncBatchStatistics> sync_;
  std::unique_ptr<GradReducer> reducer_;
  DataParallelOptions options_;
};

}  // namespace convnets
