// Named tensors of a module in PyTorch's state_dict order, and strict/non-strict loading into a module.
#pragma once
#include <torch/nn/module.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace convnets {

// Ordered (name, tensor) pairs, as in a Python state_dict.
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters and buffers in Python's order: each module's own parameters, then its buffers, then its
// children.
NamedTensors state_dict(const torch::nn::Module& module);

struct LoadReport {
  std::vector<std::string> missing;     // in the module, absent from the file
  std::vector<std::string> unexpected;  // in the file, absent from the module
  std::vector<std::string> mismatched;  // "name: file [a, b] vs model [c, d]"
  int64_t loaded = 0;
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe() const;  // one line per problem
};

// Thrown by strict loading; what() lists every missing, unexpected and mismatched key.
class StateDictMismatch : public std::runtime_error {
 public:
  explicit StateDictMismatch(const LoadReport& report);
  LoadReport report;
};

// Copies matching tensors into the module (converting dtype). Strict: any problem throws StateDictMismatch
// before anything is copied. Non-strict: skips the problems on purpose and returns them.
LoadReport load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict = true);

// "" when every floating-point tensor is finite, else how many hold NaN or infinite values and the first
// one's name (for a warning: a diverged file predicts "nan%" everywhere).
std::string non_finite_summary(const NamedTensors& tensors);

}  // namespace convnets
