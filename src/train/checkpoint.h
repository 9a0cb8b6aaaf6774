// Training checkpoints: one torch.save-compatible file of sections ({"state_dict": model, "ema_state_dict",
// "optimizer", "meta", ...}), written atomically; Python reads it with torch.load(weights_only=True) and
// ckpt["state_dict"] loads into torchvision. The manager keeps the last K and the best.
#pragma once
#include <optional>
#include <string>

#include "util/torch_file.h"

namespace convnets {

void save_checkpoint(const std::string& path, const TensorSections& sections,
                     const WeightsMetadata& metadata = {});
TensorSections load_checkpoint(const std::string& path);
const NamedTensors& section(const TensorSections& sections, const std::string& name);  // throws naming it
const NamedTensors* find_section(const TensorSections& sections,
                                 const std::string& name);  // nullptr if absent

// The state of torch's default CPU generator (dropout, stochastic depth), for bit-identical resumes.
torch::Tensor cpu_rng_state();
void set_cpu_rng_state(const torch::Tensor& state);

class CheckpointManager {
 public:
  CheckpointManager(std::string directory, int keep_last);
  // Writes checkpoint_e<epochs done>_u<updates>.pt (names sort in training order, also for checkpoints taken
  // inside an epoch); keeps the `keep_last` newest; best.pt when `metric` is the best so far.
  std::string save(int64_t epochs_done, int64_t updates, const TensorSections& sections,
                   std::optional<double> metric = std::nullopt, const WeightsMetadata& metadata = {});
  // The newest checkpoint_*.pt, if any (for resuming).
  std::optional<std::string> latest() const;
  // The best metric so far (restored on resume, so best.pt is only replaced by a better one).
  void set_best(double metric) { best_ = metric; }
  std::optional<double> best() const { return best_; }

 private:
  std::string directory_;
  int keep_last_;
  std::optional<double> best_;
};

}  // namespace convnets
