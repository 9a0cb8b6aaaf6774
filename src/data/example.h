// tf.train.Example protobuf wire format, decoded by hand: Example{features: Features{feature: map<string,
// Feature>}}, Feature = oneof {BytesList, FloatList, Int64List}. Bytes values are views into the input.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace convnets {

struct Feature {
  enum class Kind { kNone, kBytes, kFloat, kInt64 };
  Kind kind = Kind::kNone;
  std::vector<std::string_view> bytes;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct Example {
  std::vector<std::pair<std::string_view, Feature>> features;  // in wire order
  const Feature* find(std::string_view key) const;             // nullptr when absent
};

// Parses `data` into `out` (cleared first). Returns false with a reason in `error` on malformed input.
bool parse_example(std::string_view data, Example& out, std::string& error);

// Builds a serialized Example (lists are written packed, as TensorFlow does).
class ExampleBuilder {
 public:
  ExampleBuilder& add_bytes(std::string_view key, const std::vector<std::string_view>& values);
  ExampleBuilder& add_bytes(std::string_view key, std::string_view value) {
    return add_bytes(key, std::vector{value});
  }
  ExampleBuilder& add_floats(std::string_view key, const std::vector<float>& values);
  ExampleBuilder& add_int64s(std::string_view key, const std::vector<int64_t>& values);
  ExampleBuilder& add_int64(std::string_view key, int64_t value) { return add_int64s(key, {value}); }
  std::string serialize() const;

 private:
  void add_entry(std::string_view key, const std::string& feature);
  std::string features_;  // serialized map entries
};

}  // namespace convnets
