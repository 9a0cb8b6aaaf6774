// Training checkpoints in a model_dir: the manager writes them (keeping the last K and the best), resume
// validates one against the run before anything is loaded, and the CPU generator's state travels in them.
// The file format is run/checkpoint_file.h's.
#pragma once
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "run/checkpoint_file.h"

namespace convnets {

// The state of torch's default CPU generator (dropout, stochastic depth), for bit-identical resumes.
torch::Tensor cpu_rng_state();
void set_cpu_rng_state(const torch::Tensor& state);

// What a run that resumes expects of a training checkpoint.
struct ResumeExpectations {
  int64_t updates_per_epoch = 0, micro_per_epoch = 0, grad_accum_steps = 1;
  int64_t rng_state_bytes = 0;  // size of the CPU generator's state
  bool ema = false, scaler = false;
};
// Where a checkpoint resumes: the epoch (0-based), the next micro-batch in it, and the updates done.
struct ResumePoint {
  int64_t epoch = 0, micro_batch = 0, updates = 0;
};
// The checkpoint is intact but was written by a run with other settings (batch size, data): no checkpoint of
// that run can be resumed by this one.
class CheckpointMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Checks every field resuming uses (meta values in range and consistent with each other, RNG states of the
// generator's size, EMA and scaler sections present when the run has them) before anything is loaded.
// Throws std::runtime_error naming `path` and the field; CheckpointMismatch for a changed epoch length.
ResumePoint check_training_checkpoint(const TensorSections& checkpoint, const std::string& path,
                                      const ResumeExpectations& expect);

class CheckpointManager {
 public:
  CheckpointManager(std::string directory, int keep_last);
  // Writes checkpoint_e<epochs done>_u<updates>.pt (names sort in training order, also for checkpoints taken
  // inside an epoch); keeps the `keep_last` newest; best.pt when `metric` is the best so far.
  std::string save(int64_t epochs_done, int64_t updates, const TensorSections& sections,
                   std::optional<double> metric = std::nullopt, const WeightsMetadata& metadata = {});
  // The newest checkpoint_*.pt, if any (for resuming).
  std::optional<std::string> latest() const;
  // Every checkpoint_*.pt, newest first (a resume falls back to older ones when the newest is damaged).
  std::vector<std::string> newest_first() const;
  // The best metric so far (restored on resume, so best.pt is only replaced by a better one).
  void set_best(double metric) { best_ = metric; }
  std::optional<double> best() const { return best_; }
  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
  int keep_last_;
  std::optional<double> best_;
};

}  // namespace convnets
