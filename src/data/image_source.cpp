#include "data/image_source.h"

#include <stdexcept>

namespace convnets {

void ImageSource::new_epoch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  reported_.clear();  // damaged-shard findings stay: what they cost is missing from every pass
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
  console_->warning("skipping bad record: " +
                    where);  // one write per line (loader threads report concurrently)
}

}  // namespace convnets
