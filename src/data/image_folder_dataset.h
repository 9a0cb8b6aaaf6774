// Images read straight from <root>/<class>/<image> (classes sorted, labels 0-based in that order).
#pragma once
#include <string>
#include <vector>

#include "data/image_source.h"

namespace convnets {

// .jpg / .jpeg / .jpe / .png, case-insensitive: the files image folders are made of.
bool is_image_file(const std::string& path);
// The sorted names of the sub-directories of `dir` (the classes of an image folder).
std::vector<std::string> class_directories(const std::string& dir);

class ImageFolderDataset : public ImageSource {
 public:
  // Lists .jpg/.jpeg/.png files under each class directory; throws before anything runs when `root` is
  // missing, has no class directory, or holds no image.
  explicit ImageFolderDataset(const std::string& root, bool strict = false);

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  bool get(int64_t index, ImageRecord& out, std::string& storage) const override;
  void report_bad(int64_t index, const std::string& what) const override;
  const std::vector<std::string>& classes() const { return classes_; }

 private:
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> files_;  // path, label
};

}  // namespace convnets
