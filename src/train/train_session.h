// What a training run stands on, set up in order and torn down in reverse: its model_dir (created, locked
// against a second training, cleared of temporaries that killed runs left), the data-parallel job, the
// device, the console of this rank, the logs, and the config.yaml / classes.txt written beside the
// checkpoints. Rank 0 alone writes files.
#pragma once
#include <memory>
#include <optional>

#include "dist/data_parallel.h"
#include "models/layers.h"
#include "run/config.h"
#include "run/run_context.h"
#include "run/run_device.h"
#include "run/run_logs.h"
#include "util/directory_lock.h"

namespace convnets {

enum class TrainMode { kTrain, kTrainAndEval, kBenchmark };

class TrainSession {
 public:
  TrainSession(const RunConfig& config, TrainMode mode, const RunContext& context);
  ~TrainSession();
  TrainSession(const TrainSession&) = delete;
  TrainSession& operator=(const TrainSession&) = delete;

  const RunDevice& device() const { return device_; }
  DataParallel* data_parallel() { return data_parallel_.get(); }
  ProcessGroup* group() { return data_parallel_ ? &data_parallel_->group() : nullptr; }
  // The gradient reducer build_model() attached (null for one process, or before build_model()).
  GradReducer* reducer() { return data_parallel_ ? data_parallel_->reducer() : nullptr; }
  bool main_rank() const { return !data_parallel_ || data_parallel_->is_main(); }
  int rank() const { return data_parallel_ ? data_parallel_->rank() : 0; }
  int world() const { return data_parallel_ ? data_parallel_->size() : 1; }
  // Rank 0: the app's console; other ranks: their diagnostics only.
  Console& console() { return *console_; }
  RunLogs& logs() { return *logs_; }
  bool writes_files() const { return main_rank() && mode_ != TrainMode::kBenchmark; }

  // The model to train: seeded, fine-tuned from finetune_from when set, in training mode; data parallel:
  // rank 0's weights on every rank, its gradients averaged, then each rank on its own random stream
  // (dropout, stochastic depth).
  ConvNetPtr build_model();
  // The class names next to the checkpoints, when the data names them (predict reads them from there).
  void write_class_names();
  // Data parallel: every rank's BatchNorm statistics (the model's and `ema_state`'s) made equal, before an
  // evaluation or a checkpoint. A no-op for one process.
  void average_buffers(const NamedTensors& ema_state);
  // "data parallel: 2 ranks (torchrun launch, gloo), 3 gradient buckets, SyncBatchNorm"; empty alone.
  std::string describe_parallel() const;

 private:
  const RunConfig& config_;
  TrainMode mode_;
  DistEnv env_;
  std::optional<DirectoryLock> model_dir_lock_;
  RunDevice device_;
  std::unique_ptr<DataParallel> data_parallel_;
  std::unique_ptr<Console> rank_console_;
  Console* console_;
  std::unique_ptr<RunLogs> logs_;
};

}  // namespace convnets
