#include "infer/imagenet_classes.h"

#include <sstream>

namespace convnets {

extern const char* const kImageNetClassNamesText;  // generated from resources/imagenet_classes.txt

const std::vector<std::string>& imagenet_class_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    std::istringstream in(kImageNetClassNamesText);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }();
  return names;
}

}  // namespace convnets
