// PyTorch's .pt format (torch.save / torch.load, zip container): read without executing pickled code, write
// so that torch.load(weights_only=True) accepts it.
#pragma once
#include <string>
#include <string_view>

#include "util/pickle.h"
#include "util/state_dict.h"

namespace convnets {

// Unpickles a torch.save file held in memory; tensors are materialised as CPU tensors.
pickle::ValuePtr parse_torch_file(std::string_view bytes, const std::string& context);

// The tensors of a state dict inside a torch.save file: the top-level dict, or its "state_dict" / "model"
// entry when the file is a training checkpoint. Throws naming the file and key for anything else.
NamedTensors load_torch_state_dict(const std::string& path);
NamedTensors torch_state_dict_from_bytes(std::string_view bytes, const std::string& context);

// {section: {name: tensor}} as torch.save writes a dict of state dicts (training checkpoints).
using TensorSections = std::vector<std::pair<std::string, NamedTensors>>;
std::string torch_sections_bytes(const TensorSections& sections);
// Every top-level entry must be a dict of tensors; throws naming the file and the offending entry.
TensorSections torch_sections_from_bytes(std::string_view bytes, const std::string& context);

// Writes {name: tensor} (contiguous CPU copies) as a torch.save-compatible zip, atomically.
void save_torch_state_dict(const std::string& path, const NamedTensors& tensors);
std::string torch_state_dict_bytes(const NamedTensors& tensors);

}  // namespace convnets
