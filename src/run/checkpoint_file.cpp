#include "run/checkpoint_file.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

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

std::string checkpoint_file_name(int64_t epochs_done, int64_t updates) {
  char name[80];
  std::snprintf(name, sizeof(name), "checkpoint_e%04lld_u%010lld.pt", static_cast<long long>(epochs_done),
                static_cast<long long>(updates));
  return name;
}

std::vector<std::string> checkpoints_newest_first(const std::string& directory) {
  std::vector<std::string> all;
  if (!fs::is_directory(directory)) return all;
  for (const auto& e : fs::directory_iterator(directory)) {
    const std::string f = e.path().filename().string();
    if (f.rfind("checkpoint_", 0) == 0 && f.size() > 3 && f.compare(f.size() - 3, 3, ".pt") == 0)
      all.push_back(e.path().string());
  }
  std::sort(all.rbegin(), all.rend());
  return all;
}

}  // namespace convnets
