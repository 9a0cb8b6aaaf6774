#include "data/image_source.h"

#include <iostream>
#include <stdexcept>

namespace convnets {

void ImageSource::bad(const std::string& where) const {
  if (strict_) throw std::runtime_error("bad record: " + where);
  ++skipped_;
  std::cerr << "warning: skipping bad record: " << where << "\n";
}

}  // namespace convnets
