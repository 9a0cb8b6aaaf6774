#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
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
