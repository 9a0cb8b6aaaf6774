// PyTorch's .pt format (torch.save / torch.load, zip container): read without executing pickled code, write
// so that torch.load(weights_only=True) accepts it.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/pickle.h"
#include "util/state_dict.h"

namespace convnets {

// What convnets knows about the model that produced a weights file (architecture, class count, BatchNorm
// convention), as flat string pairs. In a .pt file it is an extra record <archive>/convnets.json that
// torch.load ignores; in .safetensors it is the __metadata__ object. Empty for files written elsewhere.
using WeightsMetadata = std::map<std::string, std::string>;

// Unpickles a torch.save file held in memory; tensors are materialised as CPU tensors.
pickle::ValuePtr parse_torch_file(std::string_view bytes, const std::string& context);

// The tensors of a state dict inside a torch.save file: the top-level dict, or its "state_dict" / "model"
// entry when the file is a training checkpoint. Throws naming the file and key for anything else.
NamedTensors torch_state_dict_from_bytes(std::string_view bytes, const std::string& context);
// The convnets.json record of a torch.save file; empty when there is none. Throws naming the file when the
// record is not a JSON object of strings (at most 64 KiB).
WeightsMetadata torch_file_metadata(std::string_view bytes, const std::string& context);

// {section: {name: tensor}} as torch.save writes a dict of state dicts (training checkpoints).
using TensorSections = std::vector<std::pair<std::string, NamedTensors>>;
std::string torch_sections_bytes(const TensorSections& sections, const WeightsMetadata& metadata = {});
// Every top-level entry must be a dict of tensors; throws naming the file and the offending entry.
TensorSections torch_sections_from_bytes(std::string_view bytes, const std::string& context);
// Whether `bytes` are a zip-format torch.save file (else, e.g., safetensors).
bool is_torch_zip(std::string_view bytes);
// The sections when the file's top level is a dict of dicts of tensors (a training checkpoint), nullopt
// when it holds anything else (a state dict, a foreign checkpoint); throws only for a damaged file.
std::optional<TensorSections> torch_sections_if_checkpoint(std::string_view bytes,
                                                           const std::string& context);

// Writes {name: tensor} (contiguous CPU copies) as a torch.save-compatible zip, atomically.
void save_torch_state_dict(const std::string& path, const NamedTensors& tensors,
                           const WeightsMetadata& metadata = {});
std::string torch_state_dict_bytes(const NamedTensors& tensors, const WeightsMetadata& metadata = {});

}  // namespace convnets
