#include "models/quantization.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "util/file_io.h"
#include "util/parse_number.h"
#include "util/safetensors.h"
#include "util/sha256.h"

namespace convnets {

namespace {

constexpr const char* kFormat = "convnets-int8/1";
constexpr int64_t kMaxFileBytes = 64 << 20;  // ~100 KB for a ResNet-50: anything larger is not ours
constexpr size_t kMaxSets = 16;

bool reads_as_int8(const InferenceOp& op) {
  return op.kind == InferenceOpKind::kConv || op.kind == InferenceOpKind::kLinear;
}

bool nonnegative_activation(Activation a) {
  return a == Activation::kReLU || a == Activation::kSigmoid;
}

std::string set_prefix(size_t index) {
  std::string p = std::to_string(index);  // (built in steps: g++ 12 warns on "s" + ... falsely)
  p.insert(p.begin(), 's');
  p.push_back('/');
  return p;
}

const std::map<std::string, CalibrationMethod>& method_names() {
  static const std::map<std::string, CalibrationMethod> names = {
      {"percentile", CalibrationMethod::kPercentile},
      {"entropy", CalibrationMethod::kEntropy},
      {"max", CalibrationMethod::kMax}};
  return names;
}

}  // namespace

const char* calibration_method_name(CalibrationMethod method) {
  for (const auto& [name, m] : method_names()) {
    if (m == method) return name.c_str();
  }
  return "?";
}

std::vector<bool> int8_values(const InferenceGraph& g) {
  std::vector<bool> q(static_cast<size_t>(g.num_values), false);
  for (const InferenceOp& op : g.ops) {
    if (reads_as_int8(op)) q[static_cast<size_t>(op.input)] = true;
  }
  return q;
}

std::vector<bool> nonnegative_values(const InferenceGraph& g) {
  std::vector<bool> nn(static_cast<size_t>(g.num_values), false);
  for (const InferenceOp& op : g.ops) {
    const bool in = nn[static_cast<size_t>(op.input)];
    const bool other = op.other >= 0 && nn[static_cast<size_t>(op.other)];
    bool out = false;
    switch (op.kind) {
      case InferenceOpKind::kConv:
      case InferenceOpKind::kAdd:
        out = nonnegative_activation(op.activation);
        break;
      case InferenceOpKind::kMaxPool:
      case InferenceOpKind::kGlobalAvgPool:
        out = in;
        break;
      case InferenceOpKind::kMul:
        out = in && other;
        break;
      case InferenceOpKind::kLinear:
        out = false;
    }
    nn[static_cast<size_t>(op.output)] = out;
  }
  return nn;
}

std::string value_name(const InferenceGraph& g, int value) {
  if (value == 0) return "input";
  for (const InferenceOp& op : g.ops) {
    if (op.output == value) return op.name;
  }
  throw std::logic_error("value " + std::to_string(value) + " is made by no op");
}

torch::Tensor weight_scales(const torch::Tensor& weight) {
  torch::Tensor m = weight.detach().to(torch::kDouble).abs().flatten(1).amax(1) / 127.0;
  return torch::where(m > 0, m, torch::ones_like(m)).to(torch::kFloat);
}

std::string graph_fingerprint(const InferenceGraph& g) {
  std::string bytes = g.arch + "\n" + std::to_string(g.num_classes) + "\n";
  for (const InferenceOp& op : g.ops) {
    bytes += op.name + "\n";
    for (const torch::Tensor& t : {op.weight, op.bias}) {
      if (!t.defined()) continue;
      const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
      bytes.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()));
    }
  }
  return sha256_hex(bytes);
}

torch::Tensor fake_quantize(const torch::Tensor& x, double scale, bool is_unsigned) {
  return (x / scale).round_().clamp_(is_unsigned ? 0 : -128, is_unsigned ? 255 : 127).mul_(scale);
}

Int8Calibrator::Int8Calibrator(InferenceGraph graph)
    : graph_(std::move(graph)),
      int8_(int8_values(graph_)),
      nonnegative_(nonnegative_values(graph_)),
      histograms_(int8_.size()) {}

void Int8Calibrator::observe(const torch::Tensor& x) {
  run_inference_graph(graph_, x, [this](int v, const torch::Tensor& t) {
    if (int8_[static_cast<size_t>(v)]) histograms_[static_cast<size_t>(v)].add(t);
    return t;
  });
}

Int8Calibration Int8Calibrator::result(const std::string& weights, CalibrationMethod method,
                                       double percentile, std::vector<std::string>* all_zero) const {
  Int8Calibration c;
  c.weights = weights;
  c.fingerprint = graph_fingerprint(graph_);
  for (int v = 0; v < graph_.num_values; ++v) {
    if (!int8_[static_cast<size_t>(v)]) continue;
    double amax = calibrated_amax(histograms_[static_cast<size_t>(v)], method, percentile,
                                  nonnegative_[static_cast<size_t>(v)]);
    const std::string name = value_name(graph_, v);
    if (amax == 0) {
      amax = 1;
      if (all_zero) all_zero->push_back(name);
    }
    c.amax[name] = amax;
  }
  for (const InferenceOp& op : graph_.ops) {
    if (reads_as_int8(op)) c.weight_scales[op.name] = weight_scales(op.weight).cpu();
  }
  return c;
}

QuantizedGraph quantize_graph(InferenceGraph graph, const Int8Calibration& c, const std::string& context,
                              int weight_levels) {
  if (weight_levels < 1 || weight_levels > 127)
    throw std::invalid_argument("weight levels " + std::to_string(weight_levels) + " (expected 1 to 127)");
  QuantizedGraph q;
  q.weight_levels = weight_levels;
  q.weight_scale.resize(graph.ops.size());
  const std::vector<bool> int8 = int8_values(graph);
  q.value_unsigned = nonnegative_values(graph);
  q.value_scale.assign(int8.size(), 0.0);
  std::set<std::string> names;
  for (int v = 0; v < graph.num_values; ++v) {
    if (!int8[static_cast<size_t>(v)]) continue;
    const std::string name = value_name(graph, v);
    if (!names.insert(name).second)
      throw std::logic_error("two int8 values of " + graph.arch + " are named " + name);
    const auto it = c.amax.find(name);
    if (it == c.amax.end())
      throw std::runtime_error(context + ": no range for the int8 value '" + name + "' of " + graph.arch +
                               " (a quantization of another model?)");
    if (!std::isfinite(it->second) || it->second <= 0)
      throw std::runtime_error(context + ": the range of '" + name + "' is " + std::to_string(it->second) +
                               " (expected a finite number > 0)");
    q.value_scale[static_cast<size_t>(v)] =
        it->second / (q.value_unsigned[static_cast<size_t>(v)] ? 255.0 : 127.0);
  }
  for (const auto& [name, amax] : c.amax) {
    if (!names.count(name))
      throw std::runtime_error(context + ": a range for '" + name + "', which " + graph.arch +
                               " does not store as int8 (a quantization of another model?)");
  }
  std::set<std::string> ops;
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    InferenceOp& op = graph.ops[i];
    if (!reads_as_int8(op)) continue;
    ops.insert(op.name);
    const auto it = c.weight_scales.find(op.name);
    if (it == c.weight_scales.end())
      throw std::runtime_error(context + ": no weight scales for '" + op.name + "' of " + graph.arch);
    const torch::Tensor& s = it->second;
    if (s.dim() != 1 || s.size(0) != op.weight.size(0))
      throw std::runtime_error(context + ": the weight scales of '" + op.name + "' have shape " +
                               c10::str(s.sizes()) + " (expected [" + std::to_string(op.weight.size(0)) +
                               "])");
    if (!torch::isfinite(s).all().item<bool>() || !(s > 0).all().item<bool>())
      throw std::runtime_error(context + ": the weight scales of '" + op.name +
                               "' hold a value that is not a finite number > 0");
    std::vector<int64_t> shape(static_cast<size_t>(op.weight.dim()), 1);
    shape[0] = op.weight.size(0);
    const torch::Tensor s64 = s.to(torch::kDouble).mul(127.0 / weight_levels).reshape(shape);
    q.weight_scale[i] = s64.flatten().to(torch::kFloat);
    const torch::Tensor s_used = q.weight_scale[i].to(torch::kDouble).reshape(shape);  // what the kernels see
    op.weight = (op.weight.to(torch::kDouble) / s_used)
                    .round()
                    .clamp(-weight_levels, weight_levels)
                    .mul(s_used)
                    .to(op.weight.scalar_type());
  }
  for (const auto& [name, scales] : c.weight_scales) {
    if (!ops.count(name))
      throw std::runtime_error(context + ": weight scales for '" + name + "', which " + graph.arch +
                               " does not have");
  }
  q.graph = std::move(graph);
  return q;
}

torch::Tensor integer_weights(const InferenceOp& op, const torch::Tensor& scale, int levels) {
  std::vector<int64_t> per_channel(static_cast<size_t>(op.weight.dim()), 1);
  per_channel[0] = -1;
  return (op.weight.to(torch::kDouble) / scale.to(torch::kDouble).reshape(per_channel))
      .round()
      .clamp(-levels, levels)
      .to(torch::kChar);
}

torch::Tensor run_quantized_graph(const QuantizedGraph& q, const torch::Tensor& x) {
  return run_inference_graph(q.graph, x, [&q](int v, const torch::Tensor& t) {
    const double scale = q.value_scale[static_cast<size_t>(v)];
    return scale > 0 ? fake_quantize(t, scale, q.value_unsigned[static_cast<size_t>(v)]) : t;
  });
}

void save_quantization(const std::string& path, const QuantizationFile& file) {
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"arch", file.arch},
                                             {"num_classes", std::to_string(file.num_classes)},
                                             {"calibration_method", calibration_method_name(file.method)},
                                             {"calibration_percentile", std::to_string(file.percentile)},
                                             {"calibration_images", std::to_string(file.images)},
                                             {"image_size", std::to_string(file.image_size)},
                                             {"sets", std::to_string(file.sets.size())},
                                             {"qat", file.qat ? "true" : "false"}};
  NamedTensors tensors;
  for (size_t i = 0; i < file.sets.size(); ++i) {
    const Int8Calibration& c = file.sets[i];
    const std::string p = set_prefix(i);
    meta[p + "weights"] = c.weights;
    meta[p + "fingerprint"] = c.fingerprint;
    for (const auto& [name, amax] : c.amax)
      tensors.emplace_back(p + "amax/" + name, torch::tensor({amax}, torch::kDouble));
    for (const auto& [name, s] : c.weight_scales)
      tensors.emplace_back(p + "weight_scale/" + name, s.to(torch::kCPU, torch::kFloat).contiguous());
  }
  write_file_atomic(path, safetensors_bytes(tensors, meta));
}

QuantizationFile load_quantization(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > static_cast<uintmax_t>(kMaxFileBytes))
    throw std::runtime_error(path + ": " + std::to_string(size) +
                             " bytes, more than a quantization file holds (" + std::to_string(kMaxFileBytes) +
                             ")");
  const std::string bytes = read_file(path);
  if (bytes.size() > static_cast<size_t>(kMaxFileBytes))
    throw std::runtime_error(path + ": larger than a quantization file (" + std::to_string(kMaxFileBytes) +
                             " bytes)");
  const SafetensorsFile st = parse_safetensors(bytes, path);
  auto meta = [&](const std::string& key) -> const std::string& {
    const auto it = st.metadata.find(key);
    if (it == st.metadata.end())
      throw std::runtime_error(path + ": no '" + key +
                               "' in its metadata (not a quantization file of convnets?)");
    return it->second;
  };
  auto integer = [&](const std::string& key, int64_t lo, int64_t hi) {
    const auto v = parse_int64(meta(key));
    if (!v || *v < lo || *v > hi)
      throw std::runtime_error(path + ": metadata '" + key + "' is '" + meta(key) +
                               "' (expected an integer in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "])");
    return *v;
  };
  if (meta("format") != kFormat)
    throw std::runtime_error(path + ": format '" + meta("format") + "' (expected " + kFormat + ")");
  QuantizationFile f;
  f.arch = meta("arch");
  f.num_classes = integer("num_classes", 1, 1 << 20);
  const auto method = method_names().find(meta("calibration_method"));
  if (method == method_names().end())
    throw std::runtime_error(path + ": calibration_method '" + meta("calibration_method") +
                             "' (expected percentile, entropy or max)");
  f.method = method->second;
  const std::optional<double> percentile = parse_finite_double(meta("calibration_percentile"));
  if (!percentile || *percentile <= 0 || *percentile > 100)
    throw std::runtime_error(path + ": metadata 'calibration_percentile' is '" +
                             meta("calibration_percentile") + "' (expected a number in (0, 100])");
  f.percentile = *percentile;
  f.images = integer("calibration_images", 1, int64_t{1} << 40);
  f.image_size = integer("image_size", 1, 1 << 16);
  const int64_t sets = integer("sets", 1, static_cast<int64_t>(kMaxSets));
  if (const auto it = st.metadata.find("qat"); it != st.metadata.end()) {
    if (it->second != "true" && it->second != "false")
      throw std::runtime_error(path + ": metadata 'qat' is '" + it->second + "' (expected true or false)");
    f.qat = it->second == "true";
  }
  f.sets.resize(static_cast<size_t>(sets));
  for (size_t i = 0; i < f.sets.size(); ++i) {
    const std::string p = set_prefix(i);
    f.sets[i].weights = meta(p + "weights");
    f.sets[i].fingerprint = meta(p + "fingerprint");
    if (f.sets[i].fingerprint.size() != 64 ||
        f.sets[i].fingerprint.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw std::runtime_error(path + ": metadata '" + p + "fingerprint' is not a SHA-256 in hex");
  }
  for (const auto& [key, t] : st.tensors) {
    const size_t slash = key.find('/');
    const auto index =
        slash == std::string::npos || key[0] != 's' ? std::nullopt : parse_int64(key.substr(1, slash - 1));
    if (!index || *index < 0 || *index >= sets)
      throw std::runtime_error(path + ": tensor '" + key + "' belongs to no calibrated set");
    Int8Calibration& c = f.sets[static_cast<size_t>(*index)];
    const std::string rest = key.substr(slash + 1);
    if (rest.rfind("amax/", 0) == 0) {
      if (t.scalar_type() != torch::kDouble || t.numel() != 1)
        throw std::runtime_error(path + ": '" + key + "' must be one float64 number");
      const double v = t.item<double>();
      if (!std::isfinite(v) || v <= 0)
        throw std::runtime_error(path + ": '" + key + "' is " + std::to_string(v) +
                                 " (expected a finite range > 0)");
      c.amax[rest.substr(5)] = v;
    } else if (rest.rfind("weight_scale/", 0) == 0) {
      if (t.scalar_type() != torch::kFloat || t.dim() != 1 || t.numel() == 0)
        throw std::runtime_error(path + ": '" + key +
                                 "' must be a float32 vector (one scale per output channel)");
      if (!torch::isfinite(t).all().item<bool>() || !(t > 0).all().item<bool>())
        throw std::runtime_error(path + ": '" + key + "' holds a scale that is not a finite number > 0");
      c.weight_scales[rest.substr(13)] = t;
    } else {
      throw std::runtime_error(path + ": unexpected tensor '" + key + "'");
    }
  }
  return f;
}

const Int8Calibration& calibration_for(const QuantizationFile& file, const InferenceGraph& graph,
                                       const std::string& path) {
  if (file.arch != graph.arch || file.num_classes != graph.num_classes)
    throw std::runtime_error(path + " quantizes " + file.arch + " with " + std::to_string(file.num_classes) +
                             " classes, not this " + graph.arch + " with " +
                             std::to_string(graph.num_classes) + ": run convnets quantize for it");
  const std::string fingerprint = graph_fingerprint(graph);
  for (const Int8Calibration& c : file.sets) {
    if (c.fingerprint == fingerprint) return c;
  }
  std::string calibrated;
  for (const Int8Calibration& c : file.sets) calibrated += (calibrated.empty() ? "" : ", ") + c.weights;
  throw std::runtime_error(path + " was calibrated for other weights (" + calibrated +
                           "), not the ones being run: run convnets quantize again");
}

}  // namespace convnets
