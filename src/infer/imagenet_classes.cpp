#include "infer/imagenet_classes.h"

#include <sstream>

#include "run/class_names.h"

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

std::vector<std::string> class_names_or_imagenet(const RunConfig& config) {
  std::vector<std::string> names = load_class_names(config);
  if (names.empty() && config.model.num_classes == 1000) names = imagenet_class_names();
  return names;
}

}  // namespace convnets
