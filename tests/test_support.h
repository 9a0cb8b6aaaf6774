// Helpers shared by the tests: tolerances, fixture paths, scratch directories.
#pragma once
#include <gtest/gtest.h>
#include <torch/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "util/safetensors.h"

namespace convnets::testing {

// ||a - b|| / ||b|| in float64 (absolute when b is all zeros).
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  const auto da = a.detach().to(torch::kFloat64), db = b.detach().to(torch::kFloat64);
  const double denom = db.norm().item<double>();
  const double diff = (da - db).norm().item<double>();
  return denom > 0 ? diff / denom : diff;
}

// Paths baked in by tests/CMakeLists.txt.
inline std::string fixtures_dir() {
  return CONVNETS_FIXTURES_DIR;
}
inline std::string python_exe() {
  return CONVNETS_PYTHON_EXE;
}
inline std::string tests_source_dir() {
  return CONVNETS_TESTS_SOURCE_DIR;
}

// A fixture file's tensors by name (files written by the Python reference scripts).
inline std::map<std::string, torch::Tensor> load_fixture(const std::string& relative_path) {
  std::map<std::string, torch::Tensor> m;
  std::string path = fixtures_dir();
  path.append("/").append(relative_path);
  for (auto& [k, v] : load_safetensors(path).tensors) m[k] = v;
  return m;
}

// A corrupted copy of `good` for mutation fuzzing: every third trial truncates, the others flip 1-4 bytes.
inline std::string mutate(const std::string& good, std::mt19937& rng, int trial) {
  std::string bad = good;
  if (trial % 3 == 0) {
    bad.resize(rng() % good.size());
  } else {
    for (int k = 0; k < 1 + trial % 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
  }
  return bad;
}

// A fresh directory under the system temp dir, removed at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("convnets_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::filesystem::path path_;
};

}  // namespace convnets::testing
