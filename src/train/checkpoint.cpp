#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

torch::Tensor cpu_rng_state() {
  return at::detail::getDefaultCPUGenerator().get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(state);
}

CheckpointManager::CheckpointManager(std::string directory, int keep_last)
    : directory_(std::move(directory)), keep_last_(keep_last) {
  if (keep_last_ < 1) throw std::invalid_argument("checkpoints to keep must be >= 1");
  fs::create_directories(directory_);
}

std::string CheckpointManager::save(int64_t epochs_done, int64_t updates, const TensorSections& sections,
                                    std::optional<double> metric, const WeightsMetadata& metadata) {
  const std::string path = (fs::path(directory_) / checkpoint_file_name(epochs_done, updates)).string();
  const std::string bytes = torch_sections_bytes(sections, metadata);
  write_file_atomic(path, bytes);
  if (metric && (!best_ || *metric > *best_)) {
    best_ = metric;
    write_file_atomic((fs::path(directory_) / "best.pt").string(), bytes);
  }
  const std::vector<std::string> existing = checkpoints_newest_first(directory_);
  for (size_t i = static_cast<size_t>(keep_last_); i < existing.size(); ++i) fs::remove(existing[i]);
  return path;
}

std::vector<std::string> CheckpointManager::newest_first() const {
  return checkpoints_newest_first(directory_);
}

namespace {

int64_t meta_value(const NamedTensors& meta, const std::string& key, const std::string& path) {
  for (const auto& [n, t] : meta) {
    if (n != key) continue;
    if (t.numel() != 1 || !(t.scalar_type() == torch::kInt64 || t.scalar_type() == torch::kInt32))
      throw std::runtime_error("checkpoint '" + path + "': meta '" + key + "' is not an integer scalar");
    return t.item<int64_t>();
  }
  throw std::runtime_error("checkpoint '" + path + "': meta has no '" + key + "'");
}

}  // namespace

ResumePoint check_training_checkpoint(const TensorSections& ckpt, const std::string& path,
                                      const ResumeExpectations& expect) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("checkpoint '" + path + "': " + what);
  };
  auto need = [&](const char* name) -> const NamedTensors& {
    const NamedTensors* found = find_section(ckpt, name);
    if (!found) fail(std::string("no section '") + name + "'");
    return *found;
  };
  const NamedTensors& meta = need("meta");
  const int64_t upe = meta_value(meta, "updates_per_epoch", path);
  if (upe != expect.updates_per_epoch) {
    throw CheckpointMismatch("checkpoint '" + path + "' was written with " + std::to_string(upe) +
                             " updates per epoch, this run has " + std::to_string(expect.updates_per_epoch) +
                             " (batch size or data changed); use a new model_dir");
  }
  ResumePoint at;
  at.epoch = meta_value(meta, "epoch", path);
  at.micro_batch = meta_value(meta, "micro_batch", path);
  at.updates = meta_value(meta, "updates", path);
  const int64_t k = expect.grad_accum_steps;
  if (at.epoch < 0 || at.epoch > (int64_t{1} << 40) / std::max<int64_t>(1, upe))
    fail("meta epoch = " + std::to_string(at.epoch) + " is out of range");
  if (at.micro_batch < 0 || at.micro_batch >= expect.micro_per_epoch || at.micro_batch % k != 0)
    fail("meta micro_batch = " + std::to_string(at.micro_batch) + " is not a batch boundary in [0, " +
         std::to_string(expect.micro_per_epoch) + ")");
  // The updates done are those of the epochs before plus this epoch's part (older files written at the end
  // of a run that stopped inside an epoch recorded that epoch as complete: fewer updates, still accepted).
  const int64_t position = at.epoch * upe + at.micro_batch / k;
  if (at.updates < 0 || at.updates > position || (at.micro_batch > 0 && at.updates != position))
    fail("meta updates = " + std::to_string(at.updates) + " does not match epoch " +
         std::to_string(at.epoch) + ", micro_batch " + std::to_string(at.micro_batch));
  const NamedTensors& rng = need("rng");
  if (rng.empty()) fail("the rng section is empty");
  for (const auto& [name, t] : rng) {
    if (t.scalar_type() != torch::kUInt8 || t.dim() != 1 || t.numel() != expect.rng_state_bytes)
      fail("rng state '" + name + "' is not " + std::to_string(expect.rng_state_bytes) + " bytes");
  }
  need("state_dict");
  need("optimizer");
  if (expect.ema) need("ema_state_dict");
  if (expect.scaler) {
    const NamedTensors& sc = need("scaler");
    if (sc.size() != 3) fail("the scaler section has " + std::to_string(sc.size()) + " entries, expected 3");
    for (const auto& [name, t] : sc) {
      if (t.numel() != 1 || !std::isfinite(t.item<double>()))
        fail("scaler '" + name + "' is not a finite scalar");
    }
  }
  return at;
}

std::optional<std::string> CheckpointManager::latest() const {
  const std::vector<std::string> all = checkpoints_newest_first(directory_);
  if (all.empty()) return std::nullopt;
  return all.front();
}

}  // namespace convnets
