// Whole-file reads and crash-safe writes.
#pragma once
#include <string>
#include <string_view>

namespace convnets {

// Reads a whole file; throws std::runtime_error naming the path on failure.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the
// directory. Readers see either the old file or the complete new one, never a torn write.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace convnets
