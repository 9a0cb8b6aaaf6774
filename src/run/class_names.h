// The class names of a run's model: --class_names, else <data_dir>/classes.txt, else
// <model_dir>/classes.txt, else an image folder's class directories. (predict falls back to ImageNet's
// compiled-in names: infer/imagenet_classes.h.)
#pragma once
#include <string>
#include <vector>

#include "run/config.h"

namespace convnets {

// Empty when no file names them. Throws when the file's line count differs from num_classes, or when
// --class_names names a file that does not exist.
std::vector<std::string> load_class_names(const RunConfig& config);

}  // namespace convnets
