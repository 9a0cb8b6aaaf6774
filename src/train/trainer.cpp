#include "train/trainer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "data/device_batches.h"
#include "data/mixing.h"
#include "dist/dist_env.h"
#include "dist/grad_reducer.h"
#include "dist/process_group.h"
#include "dist/sync_batch_norm.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/lr_schedule.h"
#include "train/optimizers.h"
#include "train/param_groups.h"
#include "train/run_setup.h"
#include "train/tensorboard.h"
#include "train/train_state.h"
#include "train/train_step.h"
#include "util/directory_lock.h"
#include "util/dllogger.h"
#include "util/file_io.h"
#include "util/progress_line.h"
#include "util/state_dict.h"
#include "util/stop_signal.h"
#include "util/weights.h"

namespace convnets {
namespace fs = std::filesystem;

StagePlan stage_for_epoch(const TrainConfig& c, int64_t train_size, int64_t epoch, int64_t num_epochs) {
  StagePlan p;
  const int64_t n = std::max<int64_t>(1, c.n_stages);
  if (n == 1) {
    p.image_size = train_size;
    p.randaug_magnitude = c.randaug_magnitude;
    p.mixup_alpha = c.mixup_alpha;
    p.cutmix_alpha = c.cutmix_alpha;
    return p;
  }
  const int64_t per_stage = std::max<int64_t>(1, num_epochs / n);
  p.stage = std::min(epoch / per_stage, n - 1);
  const double s = static_cast<double>(p.stage);
  const double nd = static_cast<double>(n);
  // Stage 0 already moves one step away from base_image_size; the strengths start at their base values.
  p.image_size = static_cast<int64_t>(static_cast<double>(c.base_image_size) +
                                      static_cast<double>(train_size - c.base_image_size) * (s + 1) / nd);
  auto lin = [&](double from, double to) { return from + (to - from) * s / (nd - 1); };
  p.randaug_magnitude = lin(c.base_randaug_magnitude, c.randaug_magnitude);
  p.mixup_alpha = lin(c.base_mixup, c.mixup_alpha);
  p.cutmix_alpha = lin(c.base_cutmix, c.cutmix_alpha);
  return p;
}

MixOptions mix_options(const TrainConfig& c, const StagePlan& stage) {
  MixOptions mix;
  mix.mixup_alpha = stage.mixup_alpha;
  mix.cutmix_alpha = stage.cutmix_alpha;
  mix.per_example = c.mix_per_example;
  mix.permute_partners = c.mix_partner == "permute";
  mix.symmetric_max = c.mix_symmetric_max;
  return mix;
}

namespace {

constexpr uint64_t kMixSalt = 0x6d69786d69780001ull;  // per-batch mixing draws
constexpr int64_t kSyntheticEpochImages = 1281167;    // the seeds' ImageNet train size

NamedTensors cpu_copy(const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [n, t] : tensors) out.emplace_back(n, t.detach().to(torch::kCPU).contiguous().clone());
  return out;
}

// Logs to DLLogger (+ TensorBoard) and the per-epoch summary.csv.
class RunLogs {
 public:
  RunLogs(const TrainConfig& c, bool write_files) {
    const std::string json = write_files && !c.model_dir.empty()
                                 ? (fs::path(c.model_dir) / c.log_filename).string()
                                 : std::string();
    dll_ = std::make_unique<DlLogger>(json, /*echo_to_stdout=*/write_files);
    for (const char* m : {"train_throughput", "eval_throughput"}) dll_->metadata(m, "images/s");
    for (const char* m : {"eval_latency_avg", "eval_latency_p50", "eval_latency_p90", "eval_latency_p95",
                          "eval_latency_p99", "train_step_latency_avg", "train_step_latency_p99"})
      dll_->metadata(m, "ms");
    for (const char* m : {"top1_accuracy", "top5_accuracy", "ema_top1_accuracy", "ema_top5_accuracy"})
      dll_->metadata(m, "fraction");
    if (write_files && c.tensorboard && !c.model_dir.empty())
      tb_ = std::make_unique<TensorBoardWriter>((fs::path(c.model_dir) / "tensorboard").string());
    if (write_files && !c.model_dir.empty()) csv_path_ = (fs::path(c.model_dir) / "summary.csv").string();
  }
  DlLogger& dll() { return *dll_; }
  void scalar(const std::string& tag, double v, int64_t step) {
    if (tb_) tb_->scalar(tag, v, step);
  }
  void csv_row(const std::vector<std::pair<std::string, std::string>>& cells) {
    if (csv_path_.empty()) return;
    const bool fresh = !fs::exists(csv_path_);
    std::string text;
    if (fresh) {
      for (size_t i = 0; i < cells.size(); ++i) text += (i ? "," : "") + cells[i].first;
      text += "\n";
    }
    for (size_t i = 0; i < cells.size(); ++i) text += (i ? "," : "") + cells[i].second;
    text += "\n";
    std::FILE* out = open_output_file(csv_path_, "a");  // no symbolic link followed
    const bool ok = std::fwrite(text.data(), 1, text.size(), out) == text.size();
    if (std::fclose(out) != 0 || !ok) throw std::runtime_error("cannot append to '" + csv_path_ + "'");
  }
  void flush() {
    dll_->flush();
    if (tb_) tb_->flush();
  }

 private:
  std::unique_ptr<DlLogger> dll_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::string csv_path_;
};

// Where non-zero ranks' console output goes.
// More updates than any real run (a trillion): larger products of num_iter and the epoch length are typos.
constexpr int64_t kMaxUpdates = int64_t{1} << 40;

std::ostream& null_stream() {
  static std::ostream sink(nullptr);
  return sink;
}

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

nlohmann::json eval_json(const EvalResult& r, const std::string& prefix) {
  return {{prefix + "images", r.images},
          {prefix + "skipped_records", r.skipped_records},
          {prefix + "top1_accuracy", r.top1},
          {prefix + "top5_accuracy", r.top5},
          {prefix + "eval_loss", r.loss},
          {prefix + "eval_throughput", r.images_per_second},
          {prefix + "eval_latency_avg", r.latency.avg},
          {prefix + "eval_latency_p90", r.latency.p90},
          {prefix + "eval_latency_p95", r.latency.p95},
          {prefix + "eval_latency_p99", r.latency.p99}};
}

}  // namespace

TrainOutcome run_training(const TrainConfig& given_config, TrainMode mode) {
  // BatchNorm eps / momentum made explicit (recipe, or finetune_from's own), so config.yaml, checkpoints and
  // exported weights all record the convention the model trains with.
  const TrainConfig config = with_resolved_batch_norm(given_config);
  const WeightsMetadata metadata = model_metadata(config);
  const bool benchmark = mode == TrainMode::kBenchmark;
  if (!benchmark && config.model_dir.empty())
    throw std::invalid_argument(
        "model_dir is required to train (checkpoints, config.yaml and logs go there)");
  if (!config.model_dir.empty()) fs::create_directories(config.model_dir);
  // Data parallel: one process per GPU (or CPU process), rank 0 writes every file.
  const DistEnv dist_env = run_dist_env(config);
  // One training per model_dir: a second one fails here, before it writes anything. Then the temporaries of
  // checkpoint writes that were killed are removed (their PIDs are gone).
  std::optional<DirectoryLock> model_dir_lock;
  if (!benchmark && dist_env.rank == 0) {
    model_dir_lock.emplace(config.model_dir, "training");
    if (const int n = remove_stale_temporaries(config.model_dir); n > 0)
      std::cout << "removed " << n << " temporary file(s) left in " << config.model_dir
                << " by killed runs\n";
  }
  const RunDevice device = setup_device(config, dist_env.local_rank);
  const std::unique_ptr<ProcessGroup> group = join_ranks(config, dist_env, device);
  const bool main_rank = !group || group->is_main();
  const int rank = group ? group->rank() : 0;
  std::ostream& out = main_rank ? std::cout : null_stream();
  const ResolvedData data = resolve_data(config);
  RunLogs logs(config, /*write_files=*/main_rank);
  const nlohmann::json resolved = config_to_json(config);
  logs.dll().log("PARAMETER", resolved, /*echo=*/false);
  if (main_rank && !config.model_dir.empty() && !benchmark)
    write_file_atomic((fs::path(config.model_dir) / "config.yaml").string(), config_to_yaml(config));

  torch::manual_seed(static_cast<uint64_t>(config.seed));
  ConvNetPtr model = build_model(config, device.device);
  model->train();
  if (group) {
    broadcast_module_state(*model, *group);  // one starting point, whatever each rank drew
    // Own random streams per rank (dropout, stochastic depth), so the ranks do not draw the same masks.
    if (rank > 0) torch::manual_seed(static_cast<uint64_t>(config.seed) ^ (0x9E3779B97F4A7C15ULL * rank));
  }

  // Data.
  std::shared_ptr<const ImageSource> train_source = open_split(config, true);
  std::shared_ptr<const ImageSource> eval_source =
      mode == TrainMode::kTrainAndEval ? open_split(config, false) : nullptr;
  if (mode == TrainMode::kTrainAndEval && !eval_source)
    throw std::invalid_argument(
        "train_and_eval needs data_dir with a validation split (synthetic data has none)");
  if (main_rank && !config.model_dir.empty() && !benchmark) {
    const auto names = load_class_names(config);
    const fs::path out = fs::path(config.model_dir) / "classes.txt";
    if (!names.empty() && !fs::exists(out)) {
      std::string text;
      for (const auto& n : names) text.append(n).append("\n");
      write_file_atomic(out.string(), text);
    }
  }
  const int64_t k = config.grad_accum_steps;
  const int64_t world = group ? group->size() : 1;
  const int64_t global_batch = config.batch_size * world * k;
  int64_t micro_per_epoch = 0;
  if (train_source) {
    micro_per_epoch = train_source->size() / world / config.batch_size;
  } else {
    micro_per_epoch = config.iter_unit == "batch" && benchmark
                          ? config.num_iter * k
                          : kSyntheticEpochImages / (config.batch_size * world);
  }
  const int64_t updates_per_epoch = micro_per_epoch / k;
  if (updates_per_epoch < 1) {
    throw std::invalid_argument("batch_size " + std::to_string(config.batch_size) + " x grad_accum_steps " +
                                std::to_string(k) + " is larger than the " +
                                std::to_string(train_source ? train_source->size() : 0) + " training images");
  }
  int64_t total_updates = config.num_iter;
  if (config.iter_unit == "epoch" &&
      (__builtin_mul_overflow(config.num_iter, updates_per_epoch, &total_updates) ||
       total_updates > kMaxUpdates)) {
    throw std::invalid_argument("num_iter = " + std::to_string(config.num_iter) + " epochs x " +
                                std::to_string(updates_per_epoch) + " updates per epoch is more than " +
                                std::to_string(kMaxUpdates) + " updates");
  }
  if (total_updates > kMaxUpdates)
    throw std::invalid_argument("num_iter = " + std::to_string(config.num_iter) + " is more than " +
                                std::to_string(kMaxUpdates) + " updates");
  const int64_t num_epochs = (total_updates + updates_per_epoch - 1) / updates_per_epoch;
  const double base_lr = scaled_learning_rate(config.lr_init, global_batch, config.lr_reference_batch);
  const LrSchedule schedule = make_schedule(config, base_lr, updates_per_epoch, total_updates);

  // Optimisation state.
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, *model);
  std::unique_ptr<GradScaler> scaler;
  if (device.loss_scaling) {
    GradScalerOptions so;
    if (config.static_loss_scale > 0) {
      so.init_scale = config.static_loss_scale;
      so.dynamic = false;
    }
    scaler = std::make_unique<GradScaler>(so);
  }
  std::unique_ptr<ModelEma> ema;
  if (config.ema_decay > 0) ema = std::make_unique<ModelEma>(*model, config.ema_decay);
  TrainStepOptions step_options;
  step_options.accumulation_steps = static_cast<int>(k);
  step_options.grad_clip_norm = config.grad_clip_norm;
  step_options.autocast_dtype = device.autocast;
  TrainStep step(model, *optimizer, step_options, scaler.get(), ema.get());
  std::unique_ptr<GradReducer> reducer;
  if (group) {
    std::vector<torch::Tensor> trainable;
    for (const auto& p : model->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    GradReducerOptions ro;
    ro.bucket_bytes = static_cast<int64_t>(config.bucket_size_mb * 1024 * 1024);
    ro.compression = config.grad_compression;
    reducer = std::make_unique<GradReducer>(trainable, *group, ro);
    step.set_reducer(reducer.get());
  }
  std::unique_ptr<SyncBatchNormScope> sync_bn;  // destroyed before the group
  if (group && config.sync_bn) sync_bn = std::make_unique<SyncBatchNormScope>(*group);
  // Averages BatchNorm statistics (model and EMA) across ranks, before eval and checkpoints.
  auto sync_buffers = [&] {
    if (!group) return;
    average_module_buffers(*model, *group);
    if (ema) {
      std::vector<torch::Tensor> ema_buffers;
      for (const auto& [name, t] : ema->state()) {
        if (t.is_floating_point() && (name.ends_with("running_mean") || name.ends_with("running_var")))
          ema_buffers.push_back(t);
      }
      average_tensors(ema_buffers, *group);
    }
  };

  const TrainState state(*model, *optimizer, ema.get(), scaler.get());
  // Resume: from the newest checkpoint that passes validation against this run (a damaged or crafted one is
  // reported by name and the next older one is tried). Rank 0 chooses; every rank loads that file
  // (model_dir on a filesystem all nodes share).
  std::unique_ptr<CheckpointManager> checkpoints;
  int64_t start_epoch = 0, start_micro = 0;
  if (!benchmark) {
    ResumeExpectations expect;
    expect.updates_per_epoch = updates_per_epoch;
    expect.micro_per_epoch = updates_per_epoch * k;
    expect.grad_accum_steps = k;
    expect.rng_state_bytes = cpu_rng_state().numel();
    expect.ema = ema != nullptr;
    expect.scaler = scaler != nullptr;
    auto resume_from = [&](const TensorSections& ckpt, const std::string& path) {
      const RestoredState restored = state.load(ckpt, path, expect, rank, static_cast<int>(world));
      start_epoch = restored.at.epoch;
      start_micro = restored.at.micro_batch;
      step.set_updates(restored.at.updates);
      if (restored.best_top1 && checkpoints) checkpoints->set_best(*restored.best_top1);
    };
    std::optional<std::string> latest;
    if (main_rank) {
      checkpoints =
          std::make_unique<CheckpointManager>(config.model_dir, static_cast<int>(config.keep_checkpoints));
      const std::vector<std::string> candidates = checkpoints->newest_first();
      for (size_t i = 0; i < candidates.size() && !latest; ++i) {
        try {
          resume_from(load_checkpoint(candidates[i]), candidates[i]);
          latest = candidates[i];
        } catch (const CheckpointMismatch&) {
          throw;  // the run's settings changed: no older checkpoint can fit either
        } catch (const std::exception& e) {
          std::cerr << "warning: not resuming from " << candidates[i] << ": " << e.what()
                    << (i + 1 < candidates.size() ? "; trying the next older checkpoint\n" : "\n");
        }
      }
      if (!latest && !candidates.empty()) {
        throw std::runtime_error("none of the " + std::to_string(candidates.size()) + " checkpoint(s) in '" +
                                 config.model_dir +
                                 "' can be resumed from (see the warnings above); move them away to start "
                                 "over, or use another model_dir");
      }
    }
    if (group) {
      const std::string chosen = group->broadcast_string(latest.value_or(""));
      latest = chosen.empty() ? std::nullopt : std::optional<std::string>(chosen);
      if (latest && !fs::exists(*latest)) {
        throw std::runtime_error("rank " + std::to_string(rank) + " cannot read checkpoint '" + *latest +
                                 "' that rank 0 resumes from: model_dir must be on a filesystem that every "
                                 "node shares");
      }
      if (latest && !main_rank) resume_from(load_checkpoint(*latest), *latest);
    }
    if (latest) {
      out << "resuming from " << *latest << " at epoch " << start_epoch + 1 << ", batch " << start_micro
          << " (update " << step.updates() << " of " << total_updates << ")\n";
    }
  }

  if (group) {
    out << "data parallel: " << group->size() << " ranks (" << dist_env.launcher << " launch, "
        << group->backend_name() << "), " << reducer->num_buckets() << " gradient buckets"
        << (sync_bn ? ", SyncBatchNorm" : "") << "\n";
  } else if (config.sync_bn) {
    out << "sync_bn: one process, so BatchNorm is the ordinary one\n";
  }
  out << config.arch << " on " << device.describe() << ": " << num_epochs << " epochs x " << updates_per_epoch
      << " updates (global batch " << global_batch << ", " << total_updates << " updates), base LR "
      << fmt(base_lr) << ", "
      << (train_source ? std::to_string(train_source->size()) + " train images"
                       : std::string("synthetic data"))
      << "\n";
  logs.dll().log("PARAMETER", {{"num_epochs", num_epochs},
                               {"updates_per_epoch", updates_per_epoch},
                               {"total_updates", total_updates},
                               {"global_batch_size", global_batch},
                               {"base_learning_rate", base_lr},
                               {"device", device.describe()}});

  install_stop_handlers();
  TrainOutcome outcome;
  ConvNetPtr ema_model;  // for evaluating the average
  std::unique_ptr<Loader> eval_loader;
  if (eval_source) {
    LoaderOptions lo = eval_loader_options(config);
    lo.rank = rank;
    lo.world_size = static_cast<int>(world);
    eval_loader = std::make_unique<Loader>(eval_source, lo);
  }
  // Each rank evaluates its shard of the split (every image exactly once overall); the sums are exact.
  auto evaluate_all = [&](ConvNetImpl& m) {
    EvalOptions eo;
    eo.allow_empty_shard = group != nullptr;
    EvalResult r = evaluate(m, *eval_loader, device, data, eo);
    return group ? sum_over_ranks(r, *group) : r;
  };
  auto run_eval = [&](int64_t epoch_done) {
    sync_buffers();
    outcome.eval = evaluate_all(*model);
    logs.scalar("eval/top1", outcome.eval->top1, step.updates());
    logs.scalar("eval/top5", outcome.eval->top5, step.updates());
    logs.scalar("eval/loss", outcome.eval->loss, step.updates());
    nlohmann::json j = eval_json(*outcome.eval, "");
    if (ema) {
      if (!ema_model) ema_model = build_model(config, device.device, /*load_finetune=*/false);
      load_state_dict(*ema_model, ema->state());
      outcome.eval_ema = evaluate_all(*ema_model);
      logs.scalar("eval_ema/top1", outcome.eval_ema->top1, step.updates());
      logs.scalar("eval_ema/top5", outcome.eval_ema->top5, step.updates());
      j.update(eval_json(*outcome.eval_ema, "ema_"));
    }
    logs.dll().log(nlohmann::json::array({epoch_done}), j);
  };

  // Training.
  std::unique_ptr<Loader> loader;
  // The next batch's host-to-device copy overlaps the current step (a side stream on CUDA).
  DeviceBatches device_batches(device.device, data.mean, data.std);
  std::unique_ptr<SyntheticLoader> synthetic;
  torch::Tensor synthetic_images, synthetic_labels;
  int64_t current_stage = -1;
  std::vector<double> step_ms;  // per update, for the benchmark statistics
  double timed_seconds = 0;
  int64_t timed_images = 0;
  auto sync = [&] {
    if (device.device.is_cuda()) torch::cuda::synchronize();
  };
  // Every rank calls this at the same point (it averages buffers); only rank 0 writes.
  auto save_checkpoint = [&](int64_t epoch, int64_t micro, int64_t epochs_done,
                             std::optional<double> metric) -> std::string {
    sync_buffers();
    torch::Tensor rng_states;  // [ranks, state bytes]
    if (group) rng_states = group->gather_rows(cpu_rng_state());
    if (!main_rank) return {};
    const TensorSections s = state.to_sections(
        {epoch, micro, step.updates(), updates_per_epoch, total_updates, checkpoints->best()}, rng_states);
    return checkpoints->save(epochs_done, step.updates(), s, metric, metadata);
  };

  bool stopped = false;
  int64_t epoch = start_epoch;
  for (; epoch < num_epochs && step.updates() < total_updates && !stopped; ++epoch) {
    const StagePlan stage = stage_for_epoch(config, data.train_size, epoch, num_epochs);
    if (stage.stage != current_stage) {
      current_stage = stage.stage;
      if (config.n_stages > 1) {
        out << "stage " << stage.stage + 1 << "/" << config.n_stages << ": image size " << stage.image_size
            << ", RandAugment magnitude " << fmt(stage.randaug_magnitude) << ", mixup "
            << fmt(stage.mixup_alpha) << ", cutmix " << fmt(stage.cutmix_alpha) << "\n";
      }
      if (train_source) {
        loader.reset();  // one decode pool at a time
        LoaderOptions lo = train_loader_options(config, stage.image_size, stage.randaug_magnitude);
        lo.rank = rank;  // each rank reads its share of the epoch's permutation
        lo.world_size = static_cast<int>(world);
        loader = std::make_unique<Loader>(train_source, lo);
      } else {
        synthetic = std::make_unique<SyntheticLoader>(config.batch_size, static_cast<int>(stage.image_size),
                                                      config.num_classes, static_cast<uint64_t>(config.seed));
        const Batch b = synthetic->next(0, 0);
        synthetic_images = normalize_images(b.images.to(device.device), data.mean, data.std);
        synthetic_labels = b.labels.to(device.device);
      }
    }
    const MixOptions mix = mix_options(config, stage);
    const bool mixing = mix.mixup_alpha > 0 || mix.cutmix_alpha > 0;

    const int64_t first = epoch == start_epoch ? start_micro : 0;
    if (loader) loader->start_epoch(epoch, first);
    device_batches.clear();
    if (group && epoch == start_epoch) group->barrier();  // ranks start together (loaders are warm)
    const int64_t epoch_end =
        std::min(updates_per_epoch * k,
                 first + (total_updates - step.updates()) * k);  // a batch-unit run may stop early
    std::optional<ProgressLine> progress;
    if (main_rank)
      progress.emplace("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(num_epochs), epoch_end,
                       first);
    torch::Tensor window_loss = torch::zeros({}, torch::dtype(torch::kFloat).device(device.device));
    torch::Tensor nonfinite_run = torch::zeros({}, torch::dtype(torch::kLong).device(device.device));
    double lr = 0;
    // At display steps and before a checkpoint: a diverged run stops before it saves or exports NaN weights.
    auto check_divergence = [&] {
      if (config.max_nonfinite_steps <= 0) return;
      if (const int64_t run = nonfinite_run.item<int64_t>(); run >= config.max_nonfinite_steps) {
        throw std::runtime_error("training diverged: the loss was NaN or infinite for the last " +
                                 std::to_string(run) + " steps (update " + std::to_string(step.updates()) +
                                 ", learning rate " + fmt(lr, "%.4g") +
                                 "); lower lr_init, or raise max_nonfinite_steps. No weights were exported");
      }
    };
    torch::Tensor epoch_loss = window_loss.clone();
    int64_t window_micro = 0, epoch_micro = 0, window_images = 0, epoch_images = 0;
    auto window_start = std::chrono::steady_clock::now();
    const auto epoch_start = window_start;
    int64_t done_micro = first;  // micro-batches of this epoch done: where a checkpoint resumes
    for (int64_t b = first; b < updates_per_epoch * k && step.updates() < total_updates; ++b) {
      done_micro = b + 1;
      const auto step_start = std::chrono::steady_clock::now();
      torch::Tensor images, labels;
      if (loader) {
        if (!device_batches.has_staged()) {
          std::optional<Batch> batch = loader->next();
          if (!batch) throw std::runtime_error("the train loader ended early at batch " + std::to_string(b));
          device_batches.stage(*batch);
        }
        std::tie(images, labels) = device_batches.take();
      } else {
        images = synthetic_images;
        labels = synthetic_labels;
      }
      torch::Tensor targets;
      if (mixing) {
        // Per rank and micro-batch (as each Horovod rank draws its own); one process: rank 0 of 1.
        Rng rng(static_cast<uint64_t>(config.seed) ^ kMixSalt, static_cast<uint64_t>(epoch),
                static_cast<uint64_t>(b * world + rank));
        const MixParams params = sample_mix_params(images.size(0), images.size(2), images.size(3), mix, rng);
        std::tie(images, targets) =
            apply_mix(images, labels, config.num_classes, config.label_smoothing, params);
      } else {
        targets = smooth_one_hot(labels, config.num_classes, config.label_smoothing);
      }
      lr = schedule.at(step.updates());
      const MicroStepResult r = step.micro_step(images, targets, lr);
      // Consecutive non-finite losses, counted on the device (no synchronisation); checked at display steps.
      if (!r.skipped && config.max_nonfinite_steps > 0)
        nonfinite_run = (nonfinite_run + 1) * torch::isfinite(r.loss).logical_not();
      // While the device works on this micro-batch, fetch the next one and start its copy.
      if (loader && b + 1 < epoch_end) {
        if (std::optional<Batch> next_batch = loader->next()) device_batches.stage(*next_batch);
      }
      window_loss += r.loss;
      epoch_loss += r.loss;
      ++window_micro;
      ++epoch_micro;
      window_images += images.size(0);
      epoch_images += images.size(0);
      if (!r.updated) continue;
      if (group) group->note_progress(step.updates());

      if (benchmark) {
        sync();
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start).count();
        if (step.updates() > config.warmup_steps) {
          step_ms.push_back(ms * static_cast<double>(k));
          timed_seconds += ms * 1e-3 * static_cast<double>(k);
          timed_images += images.size(0) * k;
        }
      }
      const bool last_update = step.updates() >= total_updates || b + 1 == updates_per_epoch * k;
      // Single process: a signal stops after the current update. Data parallel: the ranks agree on it at
      // display steps (one small all-reduce that also carries the metrics).
      bool stop_now = !group && stop_requested();
      if (step.updates() % config.display_every == 0 || last_update) {
        sync();
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
        double ips = seconds > 0 ? static_cast<double>(window_images) / seconds : 0;
        double loss = window_loss.item<double>() / static_cast<double>(window_micro);
        check_divergence();
        if (group) {
          const auto v = group->sum({loss, ips, stop_requested() ? 1.0 : 0.0});
          loss = v[0] / static_cast<double>(world);
          ips = v[1];
          stop_now = v[2] > 0;
        }
        if (progress)
          progress->update(b + 1, "loss " + fmt(loss, "%.4f") + "  lr " + fmt(lr, "%.4g") + "  " +
                                      fmt(ips, "%.0f") + " img/s" +
                                      (r.skipped ? "  (overflow: update skipped)" : ""));
        logs.dll().log(nlohmann::json::array({epoch + 1, step.updates()}),
                       {{"cross_entropy", loss}, {"learning_rate", lr}, {"imgs_per_sec", ips}},
                       /*echo=*/false);
        logs.scalar("train/loss", loss, step.updates());
        logs.scalar("train/learning_rate", lr, step.updates());
        logs.scalar("train/images_per_second", ips, step.updates());
        window_loss.zero_();
        window_micro = 0;
        window_images = 0;
        window_start = std::chrono::steady_clock::now();
      }
      if (!benchmark && config.checkpoint_every_steps > 0 &&
          step.updates() % config.checkpoint_every_steps == 0 && b + 1 < updates_per_epoch * k) {
        check_divergence();
        save_checkpoint(epoch, b + 1, epoch, std::nullopt);
      }
      if (stop_now) {
        if (progress) progress->finish();
        if (!benchmark) {
          const std::string path = save_checkpoint(epoch, b + 1, epoch, std::nullopt);
          out << "signal " << stop_signal_number() << ": stopped after update " << step.updates()
              << "; checkpoint " << path << " (run the same command to resume)\n";
        }
        stopped = true;
        break;
      }
    }
    if (stopped) break;
    if (progress) progress->finish();
    sync();
    const double epoch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    double epoch_ips = epoch_seconds > 0 ? static_cast<double>(epoch_images) / epoch_seconds : 0;
    double epoch_mean_loss = epoch_micro ? epoch_loss.item<double>() / static_cast<double>(epoch_micro) : 0;
    double skipped = loader ? static_cast<double>(loader->skipped_records()) : 0;
    if (group) {
      const auto v = group->sum({epoch_mean_loss, epoch_ips, skipped});
      epoch_mean_loss = v[0] / static_cast<double>(world);
      epoch_ips = v[1];
      skipped = v[2];
    }
    if (!benchmark) outcome.train_images_per_second = epoch_ips;
    const bool last_epoch = epoch + 1 == num_epochs || step.updates() >= total_updates;
    logs.dll().log(nlohmann::json::array({epoch + 1}), {{"cross_entropy", epoch_mean_loss},
                                                        {"learning_rate", lr},
                                                        {"train_throughput", epoch_ips},
                                                        {"epoch_time_s", epoch_seconds},
                                                        {"skipped_records", static_cast<int64_t>(skipped)}});
    std::optional<double> metric;
    if (mode == TrainMode::kTrainAndEval && ((epoch + 1) % config.epochs_between_eval == 0 || last_epoch)) {
      run_eval(epoch + 1);
      metric = outcome.eval->top1;
      if (outcome.eval_ema) metric = std::max(*metric, outcome.eval_ema->top1);
    }
    if (!benchmark) {
      std::vector<std::pair<std::string, std::string>> row{
          {"epoch", std::to_string(epoch + 1)},
          {"updates", std::to_string(step.updates())},
          {"train_loss", fmt(epoch_mean_loss)},
          {"learning_rate", fmt(lr)},
          {"train_images_per_second", fmt(epoch_ips, "%.1f")},
          {"epoch_seconds", fmt(epoch_seconds, "%.1f")},
          {"skipped_records", std::to_string(static_cast<int64_t>(skipped))}};
      if (mode == TrainMode::kTrainAndEval) {
        row.emplace_back("eval_top1", metric ? fmt(outcome.eval->top1) : "");
        row.emplace_back("eval_top5", metric ? fmt(outcome.eval->top5) : "");
        row.emplace_back("eval_loss", metric ? fmt(outcome.eval->loss) : "");
        if (ema) {
          row.emplace_back("ema_top1", metric ? fmt(outcome.eval_ema->top1) : "");
          row.emplace_back("ema_top5", metric ? fmt(outcome.eval_ema->top5) : "");
        }
      }
      logs.csv_row(row);
      check_divergence();
      // A run that ends inside an epoch (num_iter in batches) records exactly where, so a longer num_iter
      // continues from there.
      if (done_micro < updates_per_epoch * k)
        save_checkpoint(epoch, done_micro, epoch, metric);
      else if ((epoch + 1) % config.save_checkpoint_freq == 0 || last_epoch)
        save_checkpoint(epoch + 1, 0, epoch + 1, metric);
    }
    logs.flush();
  }
  if (!stopped && mode == TrainMode::kTrainAndEval && !outcome.eval) {
    out << "already trained for " << total_updates << " updates; evaluating\n";
    run_eval(epoch);
  }
  outcome.updates = step.updates();
  outcome.interrupted = stopped;
  if (stopped) {
    logs.flush();
    if (group) group->barrier();
    return outcome;
  }

  nlohmann::json final_data = nlohmann::json::object();
  if (benchmark) {
    outcome.train_images_per_second =
        timed_seconds > 0 ? static_cast<double>(timed_images) / timed_seconds : 0;
    const LatencyStats st = latency_stats(step_ms);
    final_data = {{"train_throughput", outcome.train_images_per_second},
                  {"train_step_latency_avg", st.avg},
                  {"train_step_latency_p50", st.p50},
                  {"train_step_latency_p90", st.p90},
                  {"train_step_latency_p99", st.p99},
                  {"timed_steps", st.count},
                  {"global_batch_size", global_batch}};
    if (group) {
      const auto v = group->sum({outcome.train_images_per_second});
      outcome.train_images_per_second = v[0];
      final_data["train_throughput"] = v[0];
    }
    if (st.count == 0) {
      out << "training_benchmark: no step after the " << config.warmup_steps
          << " warm-up steps was timed; raise num_iter\n";
    }
  } else if (main_rank) {
    // Export: the better of raw and EMA weights when both were evaluated, else the raw weights.
    const bool use_ema =
        ema && outcome.eval && outcome.eval_ema && outcome.eval_ema->top1 > outcome.eval->top1;
    for (const auto& [name, t] : state_dict(*model)) {
      if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
        throw std::runtime_error("training ended with non-finite values in '" + name +
                                 "'; no final weights were exported (lower lr_init)");
    }
    outcome.final_weights = (fs::path(config.model_dir) / "final_weights.pt").string();
    save_weights(outcome.final_weights, cpu_copy(use_ema ? ema->state() : state_dict(*model)), metadata);
    if (ema && !outcome.eval_ema) {
      save_weights((fs::path(config.model_dir) / "final_weights_ema.pt").string(), cpu_copy(ema->state()),
                   metadata);
    }
    final_data["train_throughput"] = outcome.train_images_per_second;
    final_data["exported_weights"] = use_ema ? "ema" : "raw";
    if (outcome.eval) final_data.update(eval_json(*outcome.eval, ""));
    if (outcome.eval_ema) final_data.update(eval_json(*outcome.eval_ema, "ema_"));
  }
  logs.dll().log(nlohmann::json::array(), final_data);
  logs.flush();
  if (group) group->barrier();  // nobody leaves (and closes the store on rank 0) before the others are done
  return outcome;
}

}  // namespace convnets
