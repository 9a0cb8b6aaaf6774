#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

void save_checkpoint(const std::string& path, const TensorSections& sections,
                     const WeightsMetadata& metadata) {
  write_file_atomic(path, torch_sections_bytes(sections, metadata));
}

TensorSections load_checkpoint(const std::string& path) {
  return torch_sections_from_bytes(read_file(path), path);
}

const NamedTensors* find_section(const TensorSections& sections, const std::string& name) {
  for (const auto& [n, tensors] : sections) {
    if (n == name) return &tensors;
  }
  return nullptr;
}

const NamedTensors& section(const TensorSections& sections, const std::string& name) {
  if (const NamedTensors* found = find_section(sections, name)) return *found;
  throw std::runtime_error("checkpoint has no section '" + name + "'");
}

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
  char name[80];
  std::snprintf(name, sizeof(name), "checkpoint_e%04lld_u%010lld.pt", static_cast<long long>(epochs_done),
                static_cast<long long>(updates));
  const std::string path = (fs::path(directory_) / name).string();
  const std::string bytes = torch_sections_bytes(sections, metadata);
  write_file_atomic(path, bytes);
  if (metric && (!best_ || *metric > *best_)) {
    best_ = metric;
    write_file_atomic((fs::path(directory_) / "best.pt").string(), bytes);
  }
  std::vector<std::string> existing;
  for (const auto& e : fs::directory_iterator(directory_)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("checkpoint_", 0) == 0 && f.size() > 3 && f.compare(f.size() - 3, 3, ".pt") == 0) {
      existing.push_back(e.path().string());
    }
  }
  std::sort(existing.begin(), existing.end());
  for (size_t i = 0; i + static_cast<size_t>(keep_last_) < existing.size(); ++i) fs::remove(existing[i]);
  return path;
}

std::vector<std::string> CheckpointManager::newest_first() const {
  std::vector<std::string> all;
  for (const auto& e : fs::directory_iterator(directory_)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("checkpoint_", 0) == 0 && f.size() > 3 && f.compare(f.size() - 3, 3, ".pt") == 0)
      all.push_back(e.path().string());
  }
  std::sort(all.rbegin(), all.rend());
  return all;
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
  std::optional<std::string> newest;
  for (const auto& e : fs::directory_iterator(directory_)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("checkpoint_", 0) == 0 && f.size() > 3 && f.compare(f.size() - 3, 3, ".pt") == 0) {
      if (!newest || e.path().string() > *newest) newest = e.path().string();
    }
  }
  return newest;
}

}  // namespace convnets
