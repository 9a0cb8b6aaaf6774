#include "util/safetensors.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "util/file_io.h"

namespace convnets {
namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

torch::ScalarType parse_dtype(const std::string& name, const std::string& where) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw std::runtime_error(where + ": unsupported dtype '" + name +
                           "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
}

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (t == d.type) return d.name;
  }
  throw std::runtime_error(std::string("safetensors cannot store dtype ") + c10::toString(t));
}

constexpr uint64_t kMaxHeader = 100 * 1024 * 1024;  // the reference implementation's limit

}  // namespace

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& context) {
  if (bytes.size() < 8) throw std::runtime_error(context + ": too short for a safetensors file");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[k]);
  if (header_len > kMaxHeader || header_len > bytes.size() - 8) {
    throw std::runtime_error(context + ": header length " + std::to_string(header_len) +
                             " exceeds the file; truncated or not a safetensors file");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, header_len));
  } catch (const nlohmann::json::parse_error& e) {
    // Not e.what(): it quotes the file's bytes, which may be anything (invalid UTF-8, terminal escapes).
    throw std::runtime_error(context + ": header is not valid JSON (at byte " + std::to_string(8 + e.byte) +
                             " of the file)");
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(context + ": header is not valid JSON");
  }
  if (!header.is_object()) throw std::runtime_error(context + ": header is not a JSON object");
  const std::string_view data = bytes.substr(8 + header_len);

  SafetensorsFile file;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const std::string where = context + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!it->is_object()) throw std::runtime_error(context + ": __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw std::runtime_error(context + ": __metadata__ value '" + m.key() + "' is not a string");
        file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& info = *it;
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets") || !info["dtype"].is_string() || !info["shape"].is_array() ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      throw std::runtime_error(where +
                               ": needs dtype (string), shape (array) and data_offsets ([begin, end])");
    }
    const torch::ScalarType dtype = parse_dtype(info["dtype"].get<std::string>(), where);
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned())
        throw std::runtime_error(where + ": shape entries must be non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t{1} << 40) || (v != 0 && numel > (uint64_t{1} << 62) / v))
        throw std::runtime_error(where + ": shape too large");
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      throw std::runtime_error(where + ": data_offsets must be non-negative integers");
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > data.size()) {
      throw std::runtime_error(where + ": data_offsets [" + std::to_string(begin) + ", " +
                               std::to_string(end) + ") outside the " + std::to_string(data.size()) +
                               "-byte data section; truncated file?");
    }
    const uint64_t nbytes = numel * c10::elementSize(dtype);
    if (end - begin != nbytes) {
      throw std::runtime_error(where + ": " + std::to_string(end - begin) + " bytes for shape with " +
                               std::to_string(numel) + " elements of " + info["dtype"].get<std::string>());
    }
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data.data() + begin, nbytes);
    ranges.push_back({begin, end, name});
    file.tensors.emplace_back(name, t);
  }
  // Tensors must not overlap; order the result by data offset (the file's order).
  std::vector<size_t> order(ranges.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ranges[a].begin < ranges[b].begin; });
  const Range* prev = nullptr;
  for (size_t k : order) {
    const Range& cur = ranges[k];
    if (cur.begin == cur.end) continue;  // empty tensors occupy no bytes
    if (prev && cur.begin < prev->end) {
      throw std::runtime_error(context + ": tensors '" + prev->name + "' and '" + cur.name + "' overlap");
    }
    prev = &cur;
  }
  NamedTensors sorted;
  for (size_t k : order) sorted.push_back(std::move(file.tensors[k]));
  file.tensors = std::move(sorted);
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_safetensors(bytes, path);
}

std::string safetensors_bytes(const NamedTensors& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw std::runtime_error("safetensors: duplicate or reserved name '" + name + "'");
    cpu.push_back(t.detach().to(torch::kCPU).contiguous());
    const uint64_t nbytes = cpu.back().nbytes();
    header[name] = {{"dtype", dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string json = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  json.append((8 - json.size() % 8) % 8,
              ' ');  // align the data section to 8 bytes, as the reference writer does
  std::string out;
  out.reserve(8 + json.size() + offset);
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((json.size() >> (8 * k)) & 0xFF));
  out += json;
  for (const auto& t : cpu) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata));
}

}  // namespace convnets
