#include "run/class_names.h"

#include <filesystem>
#include <sstream>

#include "data/data_dir.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

std::vector<std::string> load_class_names(const RunConfig& config) {
  std::vector<std::string> candidates;
  if (!config.data.class_names.empty()) {
    if (!fs::is_regular_file(config.data.class_names))
      throw std::runtime_error("class_names '" + config.data.class_names + "' does not exist");
    candidates.push_back(config.data.class_names);
  }
  if (!config.data.data_dir.empty())
    candidates.push_back((fs::path(config.data.data_dir) / "classes.txt").string());
  if (!config.output.model_dir.empty())
    candidates.push_back((fs::path(config.output.model_dir) / "classes.txt").string());
  for (const auto& path : candidates) {
    if (!fs::is_regular_file(path)) continue;
    std::vector<std::string> names;
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    if (static_cast<int64_t>(names.size()) != config.model.num_classes) {
      throw std::runtime_error("class names '" + path + "' has " + std::to_string(names.size()) +
                               " lines, but num_classes = " + std::to_string(config.model.num_classes));
    }
    return names;
  }
  // An image folder names its classes by its directories.
  std::vector<std::string> folders = data_class_names(config.data.data_dir);
  if (static_cast<int64_t>(folders.size()) == config.model.num_classes) return folders;
  return {};
}

}  // namespace convnets
