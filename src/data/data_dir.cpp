#include "data/data_dir.h"

#include <filesystem>
#include <sstream>

#include "data/image_folder_dataset.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

bool has_file_with_prefix(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> data_class_names(const std::string& dir) {
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return {};
  if (has_file_with_prefix(dir, "train-") || has_file_with_prefix(dir, "validation-")) {
    const fs::path names = fs::path(dir) / "classes.txt";
    if (!fs::is_regular_file(names, ec)) return {};
    std::vector<std::string> out;
    std::istringstream in(read_file(names.string()));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }
  for (const char* split : {"train", "val", "validation"}) {
    const fs::path p = fs::path(dir) / split;
    if (fs::is_directory(p, ec)) return class_directories(p.string());
  }
  return {};
}

}  // namespace convnets
