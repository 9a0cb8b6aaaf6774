#include "train/checkpointing.h"

#include <filesystem>

namespace convnets {
namespace fs = std::filesystem;

Resumed resume_training(TrainState& state, CheckpointManager* checkpoints, const EpochPlan& plan,
                        TrainSession& session) {
  ResumeExpectations expect;
  expect.updates_per_epoch = plan.updates_per_epoch;
  expect.micro_per_epoch = plan.micro_per_epoch;
  expect.grad_accum_steps = plan.micro_per_epoch / plan.updates_per_epoch;
  expect.rng_state_bytes = cpu_rng_state().numel();
  expect.ema = state.ema() != nullptr;
  expect.scaler = state.has_scaler();
  Resumed resumed;
  auto resume_from = [&](const std::string& path) {
    const RestoredState restored =
        state.load(load_checkpoint(path), path, expect, session.rank(), session.world());
    resumed = {path, restored.at.epoch, restored.at.micro_batch};
    if (restored.best_top1 && checkpoints) checkpoints->set_best(*restored.best_top1);
  };
  if (session.main_rank()) {
    const std::vector<std::string> candidates = checkpoints->newest_first();
    for (size_t i = 0; i < candidates.size() && !resumed.path; ++i) {
      try {
        resume_from(candidates[i]);
      } catch (const CheckpointMismatch&) {
        throw;  // the run's settings changed: no older checkpoint can fit either
      } catch (const std::exception& e) {
        session.console().warning("not resuming from " + candidates[i] + ": " + e.what() +
                                  (i + 1 < candidates.size() ? "; trying the next older checkpoint" : ""));
      }
    }
    if (!resumed.path && !candidates.empty()) {
      throw std::runtime_error("none of the " + std::to_string(candidates.size()) + " checkpoint(s) in '" +
                               checkpoints->directory() +
                               "' can be resumed from (see the warnings above); move them away to start "
                               "over, or use another model_dir");
    }
  }
  if (ProcessGroup* group = session.group()) {
    const std::string chosen = group->broadcast_string(resumed.path.value_or(""));
    if (!chosen.empty() && !fs::exists(chosen)) {
      throw std::runtime_error("rank " + std::to_string(session.rank()) + " cannot read checkpoint '" +
                               chosen +
                               "' that rank 0 resumes from: model_dir must be on a filesystem that every "
                               "node shares");
    }
    if (!chosen.empty() && !session.main_rank()) resume_from(chosen);
  }
  if (resumed.path) {
    session.console().info(
        "resuming from " + *resumed.path + " at epoch " + std::to_string(resumed.epoch + 1) + ", batch " +
        std::to_string(resumed.micro_batch) + " (update " + std::to_string(state.updates()) + " of " +
        std::to_string(plan.total_updates) + ")");
  }
  return resumed;
}

std::string save_training_checkpoint(TrainState& state, CheckpointManager* checkpoints, TrainPosition at,
                                     int64_t epochs_done, std::optional<double> metric,
                                     const WeightsMetadata& metadata, TrainSession& session) {
  session.average_buffers(state.ema() ? state.ema()->state() : NamedTensors{});
  torch::Tensor rng_states;  // [ranks, state bytes]
  if (ProcessGroup* group = session.group()) rng_states = group->gather_rows(cpu_rng_state());
  if (!session.main_rank()) return {};
  at.updates = state.updates();
  at.best_top1 = checkpoints->best();
  return checkpoints->save(epochs_done, state.updates(), state.to_sections(at, rng_states), metric, metadata);
}

}  // namespace convnets
