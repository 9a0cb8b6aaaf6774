// A restricted pickle reader/writer for PyTorch's .pt format. It never executes code: the only callables it
// knows are the tensor-rebuild functions and OrderedDict; any other global is kept as an opaque object.
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace convnets::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kObject,
    kTensor
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                // string, bytes, or "module.name" of a global / object's class
  std::vector<ValuePtr> items;  // tuple, list, dict (key, value, key, value, ...), object's args
  torch::Tensor tensor;
  int depth = 1;           // nesting depth of this value (a scalar is 1), bounded by kMaxDepth
  bool contained = false;  // placed inside a container: from then on it may not change

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Releases nested values iteratively, so no input can make destruction recurse deeply.
  ~Value();

  bool is_string() const { return kind == Kind::kString; }
  // Dict lookup by string key; nullptr when absent or not a dict.
  ValuePtr get(const std::string& key) const;
};

// The deepest nesting a pickle may build. torch.save's files nest a few levels; a limit keeps a crafted file
// (200,000 nested tuples, say) from exhausting the stack of whatever walks the result.
constexpr int kMaxDepth = 256;

// Resolves a persistent id ('storage', <dtype global>, key, location, numel) to a flat storage tensor.
using StorageLoader =
    std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

// Parses a pickle (protocols 2-5, the opcodes PyTorch's torch.save emits and a few more). Throws
// std::runtime_error prefixed by `context` on any malformed or unsupported input, on nesting deeper than
// kMaxDepth, and on a container changed after it was nested in another (which is how cycles are made;
// torch.save never writes one), so the result is always a finite tree or DAG.
ValuePtr load(std::string_view data, const StorageLoader& storages, const std::string& context);

// "torch.FloatStorage" -> Float, etc.; throws for unknown storage types.
torch::ScalarType storage_dtype(const std::string& global_name);
std::string storage_global(torch::ScalarType dtype);  // inverse: "FloatStorage"

// Writes a protocol-2 pickle of {name: tensor} in torch.save's layout; tensor i refers to storage key
// std::to_string(i) (the caller writes the bytes as "<archive>/data/<i>").
std::string dump_tensor_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// {section: {name: tensor}}: one level of nesting (training checkpoints). Tensors are numbered across all
// sections in order, for the storage keys.
std::string dump_sections(
    const std::vector<std::pair<std::string, std::vector<std::pair<std::string, torch::Tensor>>>>& sections);

}  // namespace convnets::pickle
