#include "util/state_dict.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <sstream>
#include <unordered_map>

namespace convnets {

NamedTensors state_dict(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_modules("", /*include_self=*/true)) {
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : item.value()->named_buffers(/*recurse=*/false))
      out.emplace_back(prefix + b.key(), b.value());
  }
  return out;
}

namespace {
std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

std::string LoadReport::describe() const {
  // At most 10 lines of each kind: a file of 120,000 foreign tensors must not produce megabytes of text.
  constexpr size_t kShown = 10;
  std::ostringstream s;
  auto list = [&](const std::vector<std::string>& keys, const char* what) {
    for (size_t i = 0; i < keys.size() && i < kShown; ++i) s << "  " << what << ": " << keys[i] << "\n";
    if (keys.size() > kShown) s << "  ... and " << keys.size() - kShown << " more " << what << "s\n";
  };
  list(missing, "missing key");
  list(unexpected, "unexpected key");
  list(mismatched, "shape mismatch");
  return s.str();
}

StateDictMismatch::StateDictMismatch(const LoadReport& r)
    : std::runtime_error("state dict does not match the model (" + std::to_string(r.missing.size()) +
                         " missing, " + std::to_string(r.unexpected.size()) + " unexpected, " +
                         std::to_string(r.mismatched.size()) +
                         " mismatched; non-strict loading skips them):\n" + r.describe()),
      report(r) {}

LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict) {
  NamedTensors targets = state_dict(module);
  std::unordered_map<std::string, const torch::Tensor*> source;
  for (const auto& [name, t] : tensors) source[name] = &t;
  std::unordered_map<std::string, bool> known;
  LoadReport report;
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  for (auto& [name, target] : targets) {
    known[name] = true;
    auto it = source.find(name);
    if (it == source.end()) {
      report.missing.push_back(name);
    } else if (it->second->sizes() != target.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_str(*it->second) + " vs model " +
                                  shape_str(target));
    } else {
      copies.emplace_back(target, it->second);
    }
  }
  for (const auto& [name, t] : tensors) {
    if (!known.count(name)) report.unexpected.push_back(name);
  }
  if (strict && !report.clean()) throw StateDictMismatch(report);
  torch::NoGradGuard no_grad;
  for (auto& [target, src] : copies) target.copy_(*src);
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

std::string non_finite_summary(const NamedTensors& tensors) {
  int64_t bad = 0;
  std::string first;
  for (const auto& [name, t] : tensors) {
    if (!t.is_floating_point() || torch::isfinite(t).all().item<bool>()) continue;
    if (bad++ == 0) first = name;
  }
  if (bad == 0) return "";
  return std::to_string(bad) + " tensor(s) hold NaN or infinite values (first: '" + first + "')";
}

}  // namespace convnets
