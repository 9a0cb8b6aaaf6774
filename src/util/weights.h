// Model weights in and out: .pt (torch.save) and .safetensors files of state dicts.
#pragma once
#include <string>
#include <string_view>

#include "util/state_dict.h"
#include "util/torch_file.h"

namespace convnets {

// Reads a state dict from a torch.save file or a .safetensors file (recognised by content, not extension).
NamedTensors load_weights(const std::string& path);
struct WeightsFile {
  NamedTensors tensors;
  WeightsMetadata metadata;  // empty for files that convnets did not write
};
WeightsFile load_weights_file(const std::string& path);
WeightsFile weights_file_from_bytes(std::string_view bytes, const std::string& context);

// Writes by extension: .safetensors, or .pt / .pth for torch.save format, with `metadata` (see
// WeightsMetadata) when given. Atomic.
void save_weights(const std::string& path, const NamedTensors& tensors, const WeightsMetadata& metadata = {});

// A model's layouts and their key renaming are its family's (models/registry.h: to_native_weights,
// load_model_weights).

}  // namespace convnets
