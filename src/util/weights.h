// Model weights in and out: .pt (torch.save) and .safetensors, torchvision and timm naming.
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

// Makes foreign key names ours (= torchvision's): strips a DataParallel/DDP "module." prefix and renames
// timm's EfficientNet layout (conv_stem, blocks.S.B.conv_dw, conv_head, ...) when it is recognised.
// ResNets need no mapping: timm and torchvision share their names.
NamedTensors normalize_keys(const NamedTensors& tensors);

// Whether the names are timm's EfficientNet layout (conv_stem, blocks.S.B...), which normalize_keys renames.
bool is_timm_efficientnet_layout(const NamedTensors& tensors);

// load_weights + normalize_keys + load_state_dict.
LoadReport load_model_weights(torch::nn::Module& model, const std::string& path, bool strict = true);

}  // namespace convnets
