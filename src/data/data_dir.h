// What a data directory holds, before any split is opened: TFRecord shards (<dir>/train-*,
// <dir>/validation-*, with prepare_data's classes.txt) or image folders (<dir>/train, <dir>/val or
// <dir>/validation).
#pragma once
#include <string>
#include <vector>

namespace convnets {

// Whether `dir` holds a regular file whose name starts with `prefix` ("train-": a TFRecord split).
bool has_file_with_prefix(const std::string& dir, const std::string& prefix);

// The classes the data directory names, in label order: an image folder's class directories (of train/,
// else val/ or validation/), or the lines of <data_dir>/classes.txt beside TFRecords (prepare_data writes
// it). Empty when data_dir is empty, missing, or names none. The configuration takes num_classes from here
// when no recipe or flag sets it; a run's classes.txt is written from it.
std::vector<std::string> data_class_names(const std::string& data_dir);

}  // namespace convnets
