#include "data/image_source.h"

#include <cstdio>
#include <stdexcept>

namespace convnets {

void ImageSource::new_epoch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  reported_.clear();
  other_problems_ = 0;
}

int64_t ImageSource::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(reported_.size()) + other_problems_;
}

void ImageSource::bad(int64_t index, const std::string& where) const {
  if (strict_) throw std::runtime_error("bad record: " + where);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (index >= 0 && !reported_.insert(index).second) return;  // already reported in this pass
    if (index < 0) ++other_problems_;
  }
  // One write per line: loader threads report concurrently, and stream insertions would interleave.
  const std::string line = "warning: skipping bad record: " + where + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace convnets
