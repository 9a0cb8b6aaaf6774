#include "util/weights.h"

#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>

#include "util/file_io.h"
#include "util/safetensors.h"
#include "util/torch_file.h"

namespace convnets {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// timm EfficientNet -> torchvision names. Stage 0 of timm is a DepthwiseSeparable block (conv_dw, bn1, se,
// conv_pw, bn2); the others are InvertedResidual (conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3).
std::string timm_efficientnet_name(const std::string& key, const std::set<std::string>& separable_blocks) {
  static const std::regex block_re(R"(^blocks\.(\d+)\.(\d+)\.(.+)$)");
  std::smatch m;
  auto replace_head = [&](const std::string& from, const std::string& to) -> std::string {
    return key.rfind(from, 0) == 0 ? to + key.substr(from.size()) : "";
  };
  if (std::regex_match(key, m, block_re)) {
    const std::string prefix =
        "features." + std::to_string(std::stoi(m[1]) + 1) + "." + m[2].str() + ".block.";
    const std::string rest = m[3];
    const bool separable = separable_blocks.count(m[1].str() + "." + m[2].str()) > 0;
    const std::vector<std::pair<std::string, std::string>> table =
        separable ? std::vector<std::pair<std::string, std::string>>{{"conv_dw.", "0.0."},
                                                                     {"bn1.", "0.1."},
                                                                     {"se.conv_reduce.", "1.fc1."},
                                                                     {"se.conv_expand.", "1.fc2."},
                                                                     {"conv_pw.", "2.0."},
                                                                     {"bn2.", "2.1."}}
                  : std::vector<std::pair<std::string, std::string>>{
                        {"conv_pw.", "0.0."},          {"bn1.", "0.1."},
                        {"conv_dw.", "1.0."},          {"bn2.", "1.1."},
                        {"se.conv_reduce.", "2.fc1."}, {"se.conv_expand.", "2.fc2."},
                        {"conv_pwl.", "3.0."},         {"bn3.", "3.1."}};
    for (const auto& [from, to] : table) {
      if (rest.rfind(from, 0) == 0) return prefix + to + rest.substr(from.size());
    }
    return key;  // left as is: reported as unexpected by the loader
  }
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{"conv_stem.", "features.0.0."},
                                                        {"bn1.", "features.0.1."},
                                                        {"conv_head.", "features.8.0."},
                                                        {"bn2.", "features.8.1."},
                                                        {"classifier.", "classifier.1."}}) {
    if (auto renamed = replace_head(from, to); !renamed.empty()) return renamed;
  }
  return key;
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

bool is_timm_efficientnet_layout(const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) {
    if (name == "conv_stem.weight" || name == "module.conv_stem.weight") return true;
  }
  return false;
}

NamedTensors normalize_keys(const NamedTensors& tensors) {
  NamedTensors out = tensors;
  bool all_prefixed = !out.empty();
  for (const auto& [name, t] : out) all_prefixed = all_prefixed && name.rfind("module.", 0) == 0;
  if (all_prefixed) {
    for (auto& [name, t] : out) name = name.substr(7);
  }
  bool timm_efficientnet = false;
  std::set<std::string> separable_blocks;  // "S.B" of blocks with conv_pw but no conv_pwl
  std::set<std::string> inverted_blocks;
  static const std::regex block_re(R"(^blocks\.(\d+\.\d+)\.(conv_pwl?)\.weight$)");
  for (const auto& [name, t] : out) {
    if (name == "conv_stem.weight") timm_efficientnet = true;
    std::smatch m;
    if (std::regex_match(name, m, block_re))
      (m[2] == "conv_pwl" ? inverted_blocks : separable_blocks).insert(m[1]);
  }
  if (!timm_efficientnet) return out;
  for (const auto& b : inverted_blocks) separable_blocks.erase(b);
  for (auto& [name, t] : out) name = timm_efficientnet_name(name, separable_blocks);
  return out;
}

LoadReport load_model_weights(torch::nn::Module& model, const std::string& path, bool strict) {
  try {
    return load_state_dict(model, normalize_keys(load_weights(path)), strict);
  } catch (const StateDictMismatch& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace convnets
