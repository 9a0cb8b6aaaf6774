#include "util/torch_file.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "util/file_io.h"
#include "util/zip_archive.h"

namespace convnets {

namespace {

constexpr size_t kMaxMetadataBytes = 64 * 1024;

// The zip container around a pickle whose storages are `tensors` in order (keys 0, 1, ...).
std::string torch_archive(const std::string& pickle_bytes, const std::vector<torch::Tensor>& tensors,
                          const WeightsMetadata& metadata) {
  ZipWriter zip;
  zip.add("archive/data.pkl", pickle_bytes);
  zip.add("archive/byteorder", "little");
  if (!metadata.empty())
    zip.add("archive/convnets.json",
            nlohmann::json(metadata).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  for (size_t k = 0; k < tensors.size(); ++k) {
    zip.add("archive/data/" + std::to_string(k),
            std::string_view(static_cast<const char*>(tensors[k].data_ptr()),
                             static_cast<size_t>(tensors[k].nbytes())));
  }
  zip.add("archive/version", "3\n");
  return zip.finish();
}

NamedTensors cpu_contiguous(const NamedTensors& tensors) {
  NamedTensors cpu;
  cpu.reserve(tensors.size());
  for (const auto& [name, t] : tensors) cpu.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  return cpu;
}

NamedTensors tensors_of(const pickle::ValuePtr& dict, const std::string& context, const std::string& where) {
  NamedTensors out;
  for (size_t k = 0; k + 1 < dict->items.size(); k += 2) {
    const auto& key = dict->items[k];
    const auto& value = dict->items[k + 1];
    if (!key->is_string()) throw std::runtime_error(context + ": " + where + " has a non-string key");
    if (value->kind != pickle::Value::Kind::kTensor) {
      throw std::runtime_error(context + ": " + where + "entry '" + key->s + "' is not a tensor");
    }
    out.emplace_back(key->s, value->tensor);
  }
  return out;
}

}  // namespace

pickle::ValuePtr parse_torch_file(std::string_view bytes, const std::string& context) {
  if (bytes.size() >= 2 && bytes.substr(0, 2) != "PK") {
    throw std::runtime_error(context +
                             ": not a zip-format torch.save file (legacy pre-1.6 format or not a .pt file)");
  }
  ZipReader zip(bytes, context);
  std::string prefix;
  for (const auto& name : zip.names()) {
    if (name.size() > 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0) {
      prefix = name.substr(0, name.size() - 8);
      break;
    }
  }
  if (prefix.empty()) throw std::runtime_error(context + ": no data.pkl record; not a torch.save file");
  if (zip.contains(prefix + "byteorder") && zip.read(prefix + "byteorder") != "little") {
    throw std::runtime_error(context + ": big-endian torch.save files are not supported");
  }
  auto storages = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    const std::string record = prefix + "data/" + key;
    if (!zip.contains(record))
      throw std::runtime_error(context + ": missing tensor storage record '" + record + "'");
    std::string_view raw = zip.read(record);
    const auto elem = static_cast<int64_t>(c10::elementSize(dtype));
    if (numel > static_cast<int64_t>(raw.size()) / elem) {
      throw std::runtime_error(context + ": storage '" + record + "' holds " + std::to_string(raw.size()) +
                               " bytes, fewer than " + std::to_string(numel) + " elements of " +
                               c10::toString(dtype));
    }
    torch::Tensor t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (numel > 0) std::memcpy(t.data_ptr(), raw.data(), static_cast<size_t>(numel * elem));
    return t;
  };
  return pickle::load(zip.read(prefix + "data.pkl"), storages, context);
}

NamedTensors torch_state_dict_from_bytes(std::string_view bytes, const std::string& context) {
  pickle::ValuePtr root = parse_torch_file(bytes, context);
  if (root->kind != pickle::Value::Kind::kDict)
    throw std::runtime_error(context + ": top-level object is not a dict");
  pickle::ValuePtr dict = root;
  for (const char* key : {"state_dict", "model"}) {
    if (auto inner = root->get(key); inner && inner->kind == pickle::Value::Kind::kDict) {
      dict = inner;
      break;
    }
  }
  NamedTensors out = tensors_of(dict, context, "");
  if (out.empty()) throw std::runtime_error(context + ": no tensors found");
  return out;
}

WeightsMetadata torch_file_metadata(std::string_view bytes, const std::string& context) {
  ZipReader zip(bytes, context);
  for (const auto& name : zip.names()) {
    if (name.size() < 14 || name.compare(name.size() - 14, 14, "/convnets.json") != 0) continue;
    const std::string_view text = zip.read(name);
    if (text.size() > kMaxMetadataBytes)
      throw std::runtime_error(context + ": " + name + " is larger than 64 KiB");
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw std::runtime_error(context + ": " + name + " is not a JSON object");
    WeightsMetadata out;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it->is_string())
        throw std::runtime_error(context + ": " + name + ": value of '" + it.key() + "' is not a string");
      out[it.key()] = it->get<std::string>();
    }
    return out;
  }
  return {};
}

std::string torch_state_dict_bytes(const NamedTensors& tensors, const WeightsMetadata& metadata) {
  const NamedTensors cpu = cpu_contiguous(tensors);
  std::vector<torch::Tensor> storages;
  for (const auto& [name, t] : cpu) storages.push_back(t);
  return torch_archive(pickle::dump_tensor_dict(cpu), storages, metadata);
}

std::string torch_sections_bytes(const TensorSections& sections, const WeightsMetadata& metadata) {
  TensorSections cpu;
  std::vector<torch::Tensor> storages;
  for (const auto& [name, tensors] : sections) {
    cpu.emplace_back(name, cpu_contiguous(tensors));
    for (const auto& [n, t] : cpu.back().second) storages.push_back(t);
  }
  return torch_archive(pickle::dump_sections(cpu), storages, metadata);
}

bool is_torch_zip(std::string_view bytes) {
  return bytes.size() >= 2 && bytes.substr(0, 2) == "PK";
}

std::optional<TensorSections> torch_sections_if_checkpoint(std::string_view bytes,
                                                           const std::string& context) {
  const pickle::ValuePtr root = parse_torch_file(bytes, context);
  if (root->kind != pickle::Value::Kind::kDict) return std::nullopt;
  TensorSections out;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const auto& key = root->items[k];
    const auto& value = root->items[k + 1];
    if (!key->is_string() || value->kind != pickle::Value::Kind::kDict) return std::nullopt;
    for (size_t i = 1; i < value->items.size(); i += 2) {
      if (value->items[i]->kind != pickle::Value::Kind::kTensor || !value->items[i - 1]->is_string())
        return std::nullopt;
    }
    out.emplace_back(key->s, tensors_of(value, context, "section '" + key->s + "' "));
  }
  return out;
}

TensorSections torch_sections_from_bytes(std::string_view bytes, const std::string& context) {
  const pickle::ValuePtr root = parse_torch_file(bytes, context);
  if (root->kind != pickle::Value::Kind::kDict)
    throw std::runtime_error(context + ": top-level object is not a dict");
  TensorSections out;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const auto& key = root->items[k];
    const auto& value = root->items[k + 1];
    if (!key->is_string() || value->kind != pickle::Value::Kind::kDict) {
      throw std::runtime_error(context + ": entry " + (key->is_string() ? "'" + key->s + "'" : "?") +
                               " is not a dict of tensors");
    }
    out.emplace_back(key->s, tensors_of(value, context, "section '" + key->s + "' "));
  }
  return out;
}

void save_torch_state_dict(const std::string& path, const NamedTensors& tensors,
                           const WeightsMetadata& metadata) {
  write_file_atomic(path, torch_state_dict_bytes(tensors, metadata));
}

}  // namespace convnets
