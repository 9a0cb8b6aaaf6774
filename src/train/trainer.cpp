#include "train/trainer.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>
#include <filesystem>

#include "data/device_batch_source.h"
#include "run/data_setup.h"
#include "run/model_setup.h"
#include "train/checkpointing.h"
#include "train/epoch_plan.h"
#include "train/lr_schedule.h"
#include "train/qat_training.h"
#include "train/stage_plan.h"
#include "train/train_evaluation.h"
#include "train/train_metrics.h"
#include "train/train_state.h"
#include "util/progress_line.h"
#include "util/state_dict.h"
#include "util/stop_signal.h"
#include "util/weights.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

NamedTensors cpu_copy(const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [n, t] : tensors) out.emplace_back(n, t.detach().to(torch::kCPU).contiguous().clone());
  return out;
}

// The run's shape, on the console and in the log.
void announce(const RunConfig& c, const EpochPlan& plan, const ImageSource* train, TrainSession& session) {
  if (session.group()) {
    session.console().info(session.describe_parallel());
  } else if (c.parallel.sync_bn) {
    session.console().info("sync_bn: one process, so BatchNorm is the ordinary one");
  }
  session.console().info(
      c.model.arch + " on " + session.device().describe() + ": " + std::to_string(plan.num_epochs) +
      " epochs x " + std::to_string(plan.updates_per_epoch) + " updates (global batch " +
      std::to_string(plan.global_batch) + ", " + std::to_string(plan.total_updates) + " updates), base LR " +
      fmt(plan.base_lr) + ", " +
      (train ? std::to_string(train->size()) + " train images" : std::string("synthetic data")));
  session.logs().dll().log("PARAMETER", {{"num_epochs", plan.num_epochs},
                                         {"updates_per_epoch", plan.updates_per_epoch},
                                         {"total_updates", plan.total_updates},
                                         {"global_batch_size", plan.global_batch},
                                         {"base_learning_rate", plan.base_lr},
                                         {"device", session.device().describe()}});
}

// Where a stage's batches come from: the train split at the stage's size and magnitude, or synthetic data.
void feed_stage(DeviceBatchSource& batches, const RunConfig& c, const StagePlan& stage,
                const std::shared_ptr<const ImageSource>& train, TrainSession& session) {
  if (c.progressive.n_stages > 1) {
    session.console().info("stage " + std::to_string(stage.stage + 1) + "/" +
                           std::to_string(c.progressive.n_stages) + ": image size " +
                           std::to_string(stage.image_size) + ", RandAugment magnitude " +
                           fmt(stage.randaug_magnitude) + ", mixup " + fmt(stage.mixup_alpha) + ", cutmix " +
                           fmt(stage.cutmix_alpha));
  }
  if (train) {
    batches.use_loader([&] {
      return std::make_unique<Loader>(
          train, train_loader_options(c, stage.image_size, stage.randaug_magnitude, session.rank(),
                                      session.world()));
    });
  } else {
    batches.use_synthetic(SyntheticLoader(c.iterations.batch_size, static_cast<int>(stage.image_size),
                                          c.model.num_classes, static_cast<uint64_t>(c.iterations.seed)));
  }
  batches.set_mixing(mix_options(c, stage));
}

// A display step: the window's loss and throughput (summed over ranks, which also agree there on a stop
// signal) to the progress line and the logs. Returns whether to stop.
bool report_window(TrainMetrics& metrics, TrainSession& session, ProgressLine* progress, int64_t done,
                   int64_t epoch, int64_t updates, double lr, bool skipped) {
  TrainMetrics::Rates w = metrics.take_window();
  metrics.check_divergence(updates, lr);
  bool stop = stop_requested();
  if (ProcessGroup* group = session.group()) {
    const auto v = group->sum({w.loss, w.images_per_second, stop ? 1.0 : 0.0});
    w.loss = v[0] / static_cast<double>(session.world());
    w.images_per_second = v[1];
    stop = v[2] > 0;
  }
  if (progress)
    progress->update(done, "loss " + fmt(w.loss, "%.4f") + "  lr " + fmt(lr, "%.4g") + "  " +
                               fmt(w.images_per_second, "%.0f") + " img/s" +
                               (skipped ? "  (overflow: update skipped)" : ""));
  RunLogs& logs = session.logs();
  logs.dll().log(nlohmann::json::array({epoch + 1, updates}),
                 {{"cross_entropy", w.loss}, {"learning_rate", lr}, {"imgs_per_sec", w.images_per_second}},
                 /*echo=*/false);
  logs.scalar("train/loss", w.loss, updates);
  logs.scalar("train/learning_rate", lr, updates);
  logs.scalar("train/images_per_second", w.images_per_second, updates);
  return stop;
}

// The end of an epoch: its figures, summed over ranks, in the DLLogger (before the evaluation, whose time
// is not the epoch's).
TrainMetrics::Rates log_epoch(TrainMetrics& metrics, DeviceBatchSource& batches, TrainSession& session,
                              int64_t epoch, double lr, double* skipped_records) {
  TrainMetrics::Rates e = metrics.epoch();
  double skipped = static_cast<double>(batches.skipped_records());
  if (ProcessGroup* group = session.group()) {
    const auto v = group->sum({e.loss, e.images_per_second, skipped});
    e.loss = v[0] / static_cast<double>(session.world());
    e.images_per_second = v[1];
    skipped = v[2];
  }
  session.logs().dll().log(nlohmann::json::array({epoch + 1}),
                           {{"cross_entropy", e.loss},
                            {"learning_rate", lr},
                            {"train_throughput", e.images_per_second},
                            {"epoch_time_s", e.seconds},
                            {"skipped_records", static_cast<int64_t>(skipped)}});
  *skipped_records = skipped;
  return e;
}

// One row of summary.csv per epoch; train_and_eval adds the evaluation's columns (empty between evals).
void csv_row(TrainSession& session, int64_t epoch, int64_t updates, double lr, const TrainMetrics::Rates& e,
             double skipped, bool with_eval, bool ema, const std::optional<TrainEvaluation>& eval) {
  std::vector<std::pair<std::string, std::string>> row{
      {"epoch", std::to_string(epoch + 1)},
      {"updates", std::to_string(updates)},
      {"train_loss", fmt(e.loss)},
      {"learning_rate", fmt(lr)},
      {"train_images_per_second", fmt(e.images_per_second, "%.1f")},
      {"epoch_seconds", fmt(e.seconds, "%.1f")},
      {"skipped_records", std::to_string(static_cast<int64_t>(skipped))}};
  if (with_eval) {
    row.emplace_back("eval_top1", eval ? fmt(eval->raw.top1) : "");
    row.emplace_back("eval_top5", eval ? fmt(eval->raw.top5) : "");
    row.emplace_back("eval_loss", eval ? fmt(eval->raw.loss) : "");
    if (ema) {
      row.emplace_back("ema_top1", eval ? fmt(eval->ema->top1) : "");
      row.emplace_back("ema_top5", eval ? fmt(eval->ema->top5) : "");
    }
  }
  session.logs().csv_row(row);
}

// The exported weights: the better of raw and EMA when both were evaluated, else the raw ones (and the EMA
// beside them); never weights holding NaN or infinite values.
std::string export_weights(TrainState& state, const TrainOutcome& outcome, const RunConfig& c,
                           bool* used_ema) {
  *used_ema = state.ema() && outcome.eval && outcome.eval_ema && outcome.eval_ema->top1 > outcome.eval->top1;
  for (const auto& [name, t] : state_dict(state.model())) {
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw std::runtime_error("training ended with non-finite values in '" + name +
                               "'; no final weights were exported (lower lr_init)");
  }
  const WeightsMetadata metadata = model_metadata(c.model);
  const std::string path = (fs::path(c.output.model_dir) / "final_weights.pt").string();
  save_weights(path, cpu_copy(*used_ema ? state.ema()->state() : state_dict(state.model())), metadata);
  if (state.ema() && !outcome.eval_ema)
    save_weights((fs::path(c.output.model_dir) / "final_weights_ema.pt").string(),
                 cpu_copy(state.ema()->state()), metadata);
  return path;
}

// One run of the training loop (train, train_and_eval, training_benchmark): what it stands on, made in order
// at construction (the session, the model and its state, the data, the plan, the resumed position), then
// epoch after epoch until the plan or a stop signal ends it.
class TrainingRun {
 public:
  TrainingRun(const RunConfig& given_config, TrainMode mode, const RunContext& context)
      // BatchNorm eps / momentum made explicit (recipe, or finetune_from's own), so config.yaml, checkpoints
      // and exported weights all record the convention the model trains with.
      : config_(with_resolved_batch_norm(given_config)),
        mode_(mode),
        benchmark_(mode == TrainMode::kBenchmark),
        session_(config_, mode, context),
        data_(resolve_data(config_)),
        model_(session_.build_model()),  // data parallel: this attaches the gradient reducer
        state_(model_, config_, session_.device(), session_.reducer()),
        train_source_(open_split(config_, true, session_.console())),
        eval_source_(mode == TrainMode::kTrainAndEval ? open_split(config_, false, session_.console())
                                                      : nullptr),
        plan_(make_plan()),
        schedule_(LrSchedule::from_config(config_.schedule, plan_.base_lr, plan_.updates_per_epoch,
                                          plan_.total_updates)),
        metadata_(model_metadata(config_.model)),
        batches_({.device = session_.device().device,
                  .mean = data_.mean,
                  .std = data_.std,
                  .num_classes = config_.model.num_classes,
                  .label_smoothing = config_.optim.label_smoothing,
                  .seed = static_cast<uint64_t>(config_.iterations.seed),
                  .rank = session_.rank(),
                  .world_size = session_.world()}),
        metrics_(session_.device(), config_.optim.max_nonfinite_steps) {
    if (!benchmark_) {
      if (session_.main_rank())
        checkpoints_ = std::make_unique<CheckpointManager>(
            config_.output.model_dir, static_cast<int>(config_.checkpoints.keep_checkpoints));
      start_ = resume_training(state_, checkpoints_.get(), plan_, session_);
    }
    // After resuming: the ranges may be the ones a QAT calibrated for the weights it started from.
    if (config_.qat.qat)
      qat_ = std::make_unique<QatTraining>(config_, *model_, session_.device(),
                                           !benchmark_ && session_.main_rank(), session_.console());
    announce(config_, plan_, train_source_.get(), session_);
    // A recipe cut short by num_iter keeps its warm-up (the seeds' behaviour; the cosine still ends at the
    // run's last update), which can then be the whole run.
    if (!benchmark_ && schedule_.warmup_steps >= plan_.total_updates)
      session_.console().warning("lr_warmup_epochs = " + fmt(config_.schedule.lr_warmup_epochs) + " (" +
                                 std::to_string(schedule_.warmup_steps) + " updates) covers the whole run (" +
                                 std::to_string(plan_.total_updates) +
                                 " updates): the learning rate only warms up and never anneals; lower "
                                 "lr_warmup_epochs or raise num_iter");
    install_stop_handlers();
    if (eval_source_) evaluator_.emplace(eval_source_, config_, session_, qat_.get());
  }

  TrainOutcome run() {
    bool stopped = false;
    int64_t epoch = start_.epoch, current_stage = -1;
    for (; epoch < plan_.num_epochs && state_.updates() < plan_.total_updates && !stopped; ++epoch) {
      const StagePlan stage = stage_for_epoch(config_, data_.train_size, epoch, plan_.num_epochs);
      if (stage.stage != current_stage) feed_stage(batches_, config_, stage, train_source_, session_);
      current_stage = stage.stage;
      const int64_t first = epoch == start_.epoch ? start_.micro_batch : 0;
      batches_.start_epoch(epoch, first);
      if (session_.group() && epoch == start_.epoch) session_.group()->barrier();  // ranks start together
      const EpochEnd end = train_epoch(epoch, first);
      stopped = end.stopped;
      if (!stopped) end_epoch(epoch, end);
    }
    if (!stopped && mode_ == TrainMode::kTrainAndEval && !outcome_.eval) {
      session_.console().info("already trained for " + std::to_string(plan_.total_updates) +
                              " updates; evaluating");
      evaluate(epoch);
    }
    outcome_.updates = state_.updates();
    outcome_.interrupted = stopped;
    if (stopped) {
      session_.logs().flush();
      return outcome_;
    }
    finish();
    return outcome_;
  }

 private:
  struct EpochEnd {
    bool stopped = false;
    double lr = 0;
    int64_t done_micro = 0;  // micro-batches of the epoch done: where a checkpoint resumes
  };

  // Called while the members are made, once the data is open: the class names written, the epochs planned.
  EpochPlan make_plan() {
    if (mode_ == TrainMode::kTrainAndEval && !eval_source_)
      throw std::invalid_argument(
          "train_and_eval needs data_dir with a validation split (synthetic data has none)");
    session_.write_class_names();
    return EpochPlan::make(config_,
                           train_source_ ? std::optional<int64_t>(train_source_->size()) : std::nullopt,
                           session_.world(), benchmark_);
  }

  // The epoch's micro-batches from `first`, each an optimizer step every grad_accum_steps; a stop signal ends
  // it after the current update, with a checkpoint.
  EpochEnd train_epoch(int64_t epoch, int64_t first) {
    const int64_t k = config_.optim.grad_accum_steps;
    // A batch-unit run may stop inside the epoch.
    const int64_t epoch_end =
        std::min(plan_.micro_per_epoch, first + (plan_.total_updates - state_.updates()) * k);
    std::optional<ProgressLine> progress;
    if (session_.main_rank())
      progress.emplace(session_.console(),
                       "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(plan_.num_epochs),
                       epoch_end, first);
    metrics_.begin_epoch();
    EpochEnd end;
    end.done_micro = first;
    for (int64_t b = first; b < plan_.micro_per_epoch && state_.updates() < plan_.total_updates; ++b) {
      end.done_micro = b + 1;
      metrics_.begin_step();
      const DeviceBatch batch = batches_.next();
      end.lr = schedule_.at(state_.updates());
      const MicroStepResult r = state_.step().micro_step(batch.images, batch.targets, end.lr);
      batches_.prefetch(b + 1 < epoch_end);  // the next copy overlaps this step
      metrics_.add(r, batch.size());
      if (!r.updated) continue;
      if (session_.group()) session_.group()->note_progress(state_.updates());
      if (benchmark_)
        metrics_.time_update(state_.updates(), config_.iterations.warmup_steps, k, batch.size());
      const bool last_update = state_.updates() >= plan_.total_updates || b + 1 == plan_.micro_per_epoch;
      // One process: a signal stops after the current update. Data parallel: the ranks agree on it at
      // display steps (one small all-reduce that also carries the metrics).
      bool stop_now = !session_.group() && stop_requested();
      if (state_.updates() % config_.output.display_every == 0 || last_update)
        stop_now = report_window(metrics_, session_, progress ? &*progress : nullptr, b + 1, epoch,
                                 state_.updates(), end.lr, r.skipped);
      if (!benchmark_ && config_.checkpoints.checkpoint_every_steps > 0 &&
          state_.updates() % config_.checkpoints.checkpoint_every_steps == 0 &&
          b + 1 < plan_.micro_per_epoch) {
        metrics_.check_divergence(state_.updates(), end.lr);
        save(epoch, b + 1, epoch, std::nullopt);
      }
      if (stop_now) {
        if (progress) progress->finish();
        if (!benchmark_) {
          const std::string path = save(epoch, b + 1, epoch, std::nullopt);
          session_.console().info("signal " + std::to_string(stop_signal_number()) +
                                  ": stopped after update " + std::to_string(state_.updates()) +
                                  "; checkpoint " + path + " (run the same command to resume)");
        }
        end.stopped = true;
        return end;
      }
    }
    if (progress) progress->finish();
    return end;
  }

  // The epoch's figures, its evaluation (train_and_eval, every epochs_between_eval and at the end), its row
  // of summary.csv and its checkpoint.
  void end_epoch(int64_t epoch, const EpochEnd& end) {
    double skipped = 0;
    const TrainMetrics::Rates e = log_epoch(metrics_, batches_, session_, epoch, end.lr, &skipped);
    const bool last_epoch = epoch + 1 == plan_.num_epochs || state_.updates() >= plan_.total_updates;
    std::optional<TrainEvaluation> eval;
    if (mode_ == TrainMode::kTrainAndEval &&
        ((epoch + 1) % config_.checkpoints.epochs_between_eval == 0 || last_epoch))
      eval = evaluate(epoch + 1);
    if (!benchmark_) {
      outcome_.train_images_per_second = e.images_per_second;
      csv_row(session_, epoch, state_.updates(), end.lr, e, skipped, mode_ == TrainMode::kTrainAndEval,
              state_.ema() != nullptr, eval);
      metrics_.check_divergence(state_.updates(), end.lr);
      const std::optional<double> metric = eval ? std::optional<double>(eval->best_top1()) : std::nullopt;
      // A run that ends inside an epoch (num_iter in batches) records exactly where, so a longer num_iter
      // continues from there.
      if (end.done_micro < plan_.micro_per_epoch)
        save(epoch, end.done_micro, epoch, metric);
      else if ((epoch + 1) % config_.checkpoints.save_checkpoint_freq == 0 || last_epoch)
        save(epoch + 1, 0, epoch + 1, metric);
    }
    session_.logs().flush();
  }

  // The run's result: the benchmark's timed figures, or the exported weights with the last evaluation.
  void finish() {
    nlohmann::json final_data = nlohmann::json::object();
    if (benchmark_) {
      outcome_.train_images_per_second = metrics_.timed_images_per_second();
      const LatencyStats st = metrics_.timed_latency();
      if (ProcessGroup* group = session_.group())
        outcome_.train_images_per_second = group->sum({outcome_.train_images_per_second})[0];
      final_data = {{"train_throughput", outcome_.train_images_per_second},
                    {"train_step_latency_avg", st.avg},
                    {"train_step_latency_p50", st.p50},
                    {"train_step_latency_p90", st.p90},
                    {"train_step_latency_p99", st.p99},
                    {"timed_steps", st.count},
                    {"global_batch_size", plan_.global_batch}};
      if (st.count == 0)
        session_.console().info("training_benchmark: no step after the " +
                                std::to_string(config_.iterations.warmup_steps) +
                                " warm-up steps was timed; raise num_iter");
    } else if (session_.main_rank()) {
      bool used_ema = false;
      outcome_.final_weights = export_weights(state_, outcome_, config_, &used_ema);
      final_data["train_throughput"] = outcome_.train_images_per_second;
      final_data["exported_weights"] = used_ema ? "ema" : "raw";
      if (outcome_.eval) final_data.update(eval_report_json(*outcome_.eval));
      if (outcome_.eval_ema) final_data.update(eval_report_json(*outcome_.eval_ema, "ema_"));
    }
    session_.logs().dll().log(nlohmann::json::array(), final_data);
    session_.logs().flush();
  }

  TrainEvaluation evaluate(int64_t epochs_done) {
    const TrainEvaluation e = evaluator_->evaluate(state_, epochs_done);
    outcome_.eval = e.raw;
    outcome_.eval_ema = e.ema;
    return e;
  }

  std::string save(int64_t epoch, int64_t micro, int64_t epochs_done, std::optional<double> metric) {
    const std::string path = save_training_checkpoint(
        state_, checkpoints_.get(), {epoch, micro, 0, plan_.updates_per_epoch, plan_.total_updates},
        epochs_done, metric, metadata_, session_);
    // The int8 form of the weights just saved, with the ranges they were trained for.
    if (qat_ && session_.main_rank()) qat_->save(*model_, state_.ema() ? &state_.ema()->state() : nullptr);
    return path;
  }

  const RunConfig config_;  // before the session, which keeps a reference to it
  TrainMode mode_;
  bool benchmark_;
  TrainSession session_;
  ResolvedData data_;
  ConvNetPtr model_;
  TrainState state_;
  std::shared_ptr<const ImageSource> train_source_, eval_source_;
  EpochPlan plan_;
  LrSchedule schedule_;
  WeightsMetadata metadata_;
  DeviceBatchSource batches_;
  TrainMetrics metrics_;
  std::unique_ptr<CheckpointManager> checkpoints_;
  Resumed start_;
  std::unique_ptr<QatTraining> qat_;
  std::optional<TrainEvaluator> evaluator_;
  TrainOutcome outcome_;
};

}  // namespace

TrainOutcome run_training(const RunConfig& config, TrainMode mode, const RunContext& context) {
  return TrainingRun(config, mode, context).run();
}

}  // namespace convnets
