// Helpers shared by the tests: tolerances, fixture paths, scratch directories.
#pragma once
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>

#include "data/jpeg_codec.h"
#include "models/registry.h"
#include "run/config.h"
#include "run/model_setup.h"
#include "util/console.h"
#include "util/file_io.h"
#include "util/random.h"
#include "util/safetensors.h"
#include "util/weights.h"

namespace convnets::testing {

// ||a - b|| / ||b|| in float64 (absolute when b is all zeros).
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  const auto da = a.detach().to(torch::kFloat64), db = b.detach().to(torch::kFloat64);
  const double denom = db.norm().item<double>();
  const double diff = (da - db).norm().item<double>();
  return denom > 0 ? diff / denom : diff;
}

// A bound for the float32 error of a forward pass against float64, derived from the model's shape: a dot
// product of length K rounds to ~sqrt(K) u (u = 2^-24; rounding errors of the partial sums add like a random
// walk), and L such layers in sequence add up the same way, so ~sqrt(L K_max) u; 4x that is the bound. K and
// L come from the weights (convolutions and linear layers). ResNet-50: K_max 4608, L 54 -> 1.2e-4.
inline double fp32_forward_bound(const torch::nn::Module& model) {
  double k_max = 1, layers = 0;
  for (const auto& p : model.named_parameters()) {
    const torch::Tensor& w = p.value();
    if (w.dim() < 2 || p.key().find("weight") == std::string::npos) continue;
    k_max = std::max(k_max, static_cast<double>(w.numel() / w.size(0)));
    layers += 1;
  }
  return 4.0 * std::sqrt(layers * k_max) * 5.96e-8;
}

// How many different classes the rows of `logits` pick: a reference whose inputs all get the same answer
// cannot tell a right model from a wrong one.
inline int64_t distinct_top1(const torch::Tensor& logits) {
  return std::get<0>(at::_unique(logits.argmax(1))).numel();
}

// A text file's lines (without their newlines).
inline std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
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

// The reference weights tests/python/make_model_fixtures.py wrote for `arch` (at 64 px): torch.save files for
// the registry's even positions, safetensors for the odd ones, so both readers are exercised.
inline std::string fixture_weights(const std::string& arch) {
  const auto& names = model_names();
  const auto index = std::find(names.begin(), names.end(), arch) - names.begin();
  return fixtures_dir() + "/" + arch + (index % 2 == 0 ? ".pt" : ".safetensors");
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

// An image folder dataset: <root>/{train,val}/class<c>/<i>.jpg, `classes` x `per_class` JPEGs of `size` px
// per split, each class a different brightness with noise (easy to tell apart, not all the same).
inline void write_image_folder(const std::filesystem::path& root, int classes, int per_class, int size = 40) {
  Rng rng(7);
  for (const std::string split : {"train", "val"}) {
    for (int c = 0; c < classes; ++c) {
      const auto dir = root / split / ("class" + std::to_string(c));
      std::filesystem::create_directories(dir);
      for (int i = 0; i < per_class; ++i) {
        ImageU8 img(size, size);
        const int base = 40 + 150 * c / std::max(1, classes - 1);
        for (auto& p : img.pixels) p = static_cast<uint8_t>(base + rng.uniform_int(60));
        write_file_atomic((dir / (std::to_string(i) + ".jpg")).string(), encode_jpeg(img, 90));
      }
    }
  }
}

// A weights file written elsewhere (torchvision, timm) as the app runs it: renamed into the model's layout,
// built with the conventions the file implies (BatchNorm, a foreign layout's padding), in eval mode.
inline ConvNetPtr reference_model(const std::string& arch, const std::string& path) {
  const WeightsFile file = load_weights_file(path);
  const ResolvedWeights r = resolve_weights(default_config(arch), file.tensors, file.metadata, false, path);
  ConvNetPtr model = create_model(arch, model_overrides(r.config));
  load_state_dict(*model, r.weights.tensors, /*strict=*/true);
  model->eval();
  return model;
}

// An HxWx3 uint8 tensor as an image (a copy).
inline ImageU8 image_of(const torch::Tensor& t) {
  ImageU8 img(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)));
  std::memcpy(img.pixels.data(), t.contiguous().data_ptr(), img.pixels.size());
  return img;
}

// A console that keeps what a run says, for tests that check it.
// Loader threads report concurrently (util/console.h), so each line is appended under a lock; read `out` and
// `err` once the run has returned.
class RecordingConsole : public Console {
 public:
  void info(const std::string& text) override {
    std::lock_guard<std::mutex> lock(mutex_);
    out += text + "\n";
  }
  void diagnostic(const std::string& line) override {
    std::lock_guard<std::mutex> lock(mutex_);
    err += line + "\n";
  }
  void progress(const std::string&) override {}
  void end_progress() override {}
  std::string out, err;

 private:
  std::mutex mutex_;
};

}  // namespace convnets::testing
