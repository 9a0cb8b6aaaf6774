#include "train/train_session.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>

#include "run/class_names.h"
#include "run/model_setup.h"
#include "run/parallel_setup.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

TrainSession::TrainSession(const RunConfig& config, TrainMode mode, const RunContext& context)
    : config_(config), mode_(mode), env_(run_dist_env(config)), console_(context.console) {
  const std::string& dir = config.output.model_dir;
  if (mode != TrainMode::kBenchmark && dir.empty())
    throw std::invalid_argument(
        "model_dir is required to train (checkpoints, config.yaml and logs go there)");
  if (!dir.empty()) fs::create_directories(dir);
  // One training per model_dir: a second one fails here, before it writes anything. Then the temporaries of
  // checkpoint writes that were killed are removed (their PIDs are gone).
  if (mode != TrainMode::kBenchmark && env_.rank == 0) {
    model_dir_lock_.emplace(dir, "training");
    if (const int n = remove_stale_temporaries(dir); n > 0)
      console_->info("removed " + std::to_string(n) + " temporary file(s) left in " + dir +
                     " by killed runs");
  }
  device_ = setup_device(config.precision, config.cpu, env_.local_rank);
  data_parallel_ = join_data_parallel(config, env_, device_, context);
  if (!main_rank()) {
    rank_console_ = std::make_unique<DiagnosticsOnly>(*context.console);
    console_ = rank_console_.get();
  }
  logs_ = std::make_unique<RunLogs>(config, LogAccess::kWriter, main_rank(), *console_);
  logs_->parameters(config);
  if (writes_files()) write_file_atomic((fs::path(dir) / "config.yaml").string(), config_to_yaml(config));
}

TrainSession::~TrainSession() {
  // Nobody leaves (and closes the store on rank 0) before the others are done. Not after an error: the
  // others may never arrive.
  if (data_parallel_ && std::uncaught_exceptions() == 0) {
    try {
      data_parallel_->group().barrier();
    } catch (const std::exception&) {
    }
  }
}

ConvNetPtr TrainSession::build_model() {
  torch::manual_seed(static_cast<uint64_t>(config_.iterations.seed));
  ConvNetPtr model = convnets::build_model(config_, device_.device);
  if (!config_.init.finetune_from.empty()) load_finetune_weights(*model, config_, *console_);
  model->train();
  if (data_parallel_) {
    data_parallel_->attach(model);
    // Own random streams per rank (dropout, stochastic depth), so the ranks do not draw the same masks.
    if (rank() > 0)
      torch::manual_seed(static_cast<uint64_t>(config_.iterations.seed) ^ (0x9E3779B97F4A7C15ULL * rank()));
  }
  return model;
}

void TrainSession::write_class_names() {
  if (!writes_files()) return;
  const auto names = load_class_names(config_);
  const fs::path out = fs::path(config_.output.model_dir) / "classes.txt";
  if (names.empty() || fs::exists(out)) return;
  std::string text;
  for (const auto& n : names) text.append(n).append("\n");
  write_file_atomic(out.string(), text);
}

void TrainSession::average_buffers(const NamedTensors& ema_state) {
  if (data_parallel_) data_parallel_->average_buffers(ema_state);
}

std::string TrainSession::describe_parallel() const {
  if (!data_parallel_) return {};
  return "data parallel: " + std::to_string(world()) + " ranks (" + env_.launcher + " launch, " +
         data_parallel_->group().backend_name() + "), " +
         std::to_string(data_parallel_->reducer() ? data_parallel_->reducer()->num_buckets() : 0) +
         " gradient buckets" + (data_parallel_->synchronises_batch_norm() ? ", SyncBatchNorm" : "");
}

}  // namespace convnets
