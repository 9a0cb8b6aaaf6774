// The IDX format of MNIST / Fashion-MNIST (optionally gzip-compressed): big-endian magic, dimensions, uint8
// data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace convnets {

struct IdxArray {
  std::vector<int64_t> shape;  // e.g. {60000, 28, 28} or {60000}
  std::vector<uint8_t> data;
};

// Reads an unsigned-byte IDX file (.gz or raw); throws naming the file on a bad magic, shape or size.
IdxArray read_idx_file(const std::string& path);

}  // namespace convnets
