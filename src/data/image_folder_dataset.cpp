#include "data/image_folder_dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

bool is_image_file(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".jpg" || ext == ".jpeg" || ext == ".jpe" || ext == ".png";
}

std::vector<std::string> class_directories(const std::string& dir) {
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  return classes;
}

ImageFolderDataset::ImageFolderDataset(const std::string& root, bool strict) : ImageSource(strict) {
  if (!fs::is_directory(root)) throw std::runtime_error("image folder '" + root + "' does not exist");
  classes_ = class_directories(root);
  if (classes_.empty()) throw std::runtime_error("image folder '" + root + "' has no class directories");
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<std::string> paths;
    for (const auto& f : fs::recursive_directory_iterator(fs::path(root) / classes_[c])) {
      if (f.is_regular_file() && is_image_file(f.path().string())) paths.push_back(f.path().string());
    }
    std::sort(paths.begin(), paths.end());
    for (auto& p : paths) files_.emplace_back(std::move(p), static_cast<int64_t>(c));
  }
  if (files_.empty()) throw std::runtime_error("image folder '" + root + "' holds no .jpg/.jpeg/.png files");
}

bool ImageFolderDataset::get(int64_t index, ImageRecord& out, std::string& storage) const {
  const auto& [path, label] = files_.at(static_cast<size_t>(index));
  try {
    storage = read_file(path);
  } catch (const std::exception& e) {
    bad(index, path + ": " + e.what());
    return false;
  }
  out.encoded = storage;
  out.label = label;
  out.boxes.clear();
  return true;
}

void ImageFolderDataset::report_bad(int64_t index, const std::string& what) const {
  bad(index, files_.at(static_cast<size_t>(index)).first + ": " + what);
}

}  // namespace convnets
