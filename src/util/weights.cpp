#include "util/weights.h"

#include <fstream>
#include <stdexcept>

#include "util/file_io.h"
#include "util/safetensors.h"
#include "util/torch_file.h"

namespace convnets {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

WeightsFile load_weights_file(const std::string& path) {
  return weights_file_from_bytes(read_file(path), path);
}

WeightsFile weights_file_from_bytes(std::string_view bytes, const std::string& path) {
  if (bytes.size() >= 4 && bytes.substr(0, 4) == std::string_view("PK\x03\x04", 4))
    return {torch_state_dict_from_bytes(bytes, path), torch_file_metadata(bytes, path)};
  if (bytes.size() >= 9 && bytes[8] == '{') {
    SafetensorsFile f = parse_safetensors(bytes, path);
    WeightsMetadata convnets_keys;  // other writers' metadata is theirs
    for (auto& [k, v] : f.metadata) {
      if (k.rfind("convnets.", 0) == 0) convnets_keys[k] = v;
    }
    return {std::move(f.tensors), std::move(convnets_keys)};
  }
  throw std::runtime_error(path + ": neither a torch.save (zip) file nor a safetensors file");
}

NamedTensors load_weights(const std::string& path) {
  return load_weights_file(path).tensors;
}

void save_weights(const std::string& path, const NamedTensors& tensors, const WeightsMetadata& metadata) {
  if (ends_with(path, ".safetensors")) {
    save_safetensors(path, tensors, metadata);
  } else if (ends_with(path, ".pt") || ends_with(path, ".pth")) {
    save_torch_state_dict(path, tensors, metadata);
  } else {
    throw std::invalid_argument(path + ": unknown weights extension; expected .safetensors, .pt or .pth");
  }
}

}  // namespace convnets
