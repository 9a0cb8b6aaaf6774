// ImageNet-1k's 1000 class names (torchvision's), compiled in: what predict names classes with when a
// 1000-class model comes with no class-name file.
#pragma once
#include <string>
#include <vector>

namespace convnets {

const std::vector<std::string>& imagenet_class_names();

}  // namespace convnets
