// ImageNet-1k's 1000 class names (torchvision's), compiled in: what predict names classes with when a
// 1000-class model comes with no class-name file.
#pragma once
#include <string>
#include <vector>

namespace convnets {

struct RunConfig;

const std::vector<std::string>& imagenet_class_names();

// The class names predict and export give a model of `config`: its class-name file (run/class_names.h), else
// ImageNet's for a 1000-class model, else none.
std::vector<std::string> class_names_or_imagenet(const RunConfig& config);

}  // namespace convnets
