// The safetensors format: 8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets}} (+ optional "__metadata__"), then the raw little-endian data.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "util/state_dict.h"

namespace convnets {

struct SafetensorsFile {
  NamedTensors tensors;  // in data order
  std::map<std::string, std::string> metadata;
};

// Validates everything (header size and JSON, dtypes, shapes vs byte ranges, ranges inside the data and not
// overlapping) and throws std::runtime_error naming `context` and the offending tensor.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& context);
SafetensorsFile load_safetensors(const std::string& path);

std::string safetensors_bytes(const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace convnets
