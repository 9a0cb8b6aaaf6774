// The inference form on the CPU as a fixed oneDNN plan (docs/architecture.md, Evaluation and inference): for
// each input shape, every op of the InferenceGraph becomes one oneDNN primitive created once — convolutions
// with their folded bias, the activation and the residual add as post-ops, pooling, the squeeze-excitation
// multiply as a broadcast binary op (at batch 1, where the map has at least 16x as many positions as the
// 1x1 convolution that reads the product has output channels, a reorder that scales that convolution's
// weights by the gate instead), the classifier as an inner product; grouped convolutions whose groups are
// too narrow for a direct kernel merge neighbouring groups (block-diagonal weights) — weights reordered once
// into the layout each primitive picks, activations in one layout end to end (nhwc by default), buffers
// reused by liveness and one scratchpad, all preallocated. Linked against its own oneDNN (the venv's
// onednn-cpu-gomp wheel, sharing torch's OpenMP runtime); everything else stays on LibTorch.
#pragma once
#include <torch/types.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "models/inference_graph.h"

namespace convnets {

// Whether the CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX), as oneDNN sees it.
bool onednn_plan_bf16_supported();
// "avx512_core_bf16", "avx2", ...: oneDNN's instruction set on this CPU; "" without oneDNN.
std::string onednn_cpu_isa();

// How activations are laid out between ops. kAuto is nhwc (onednn_plan.cpp says why); the blocked layouts
// are there to measure, and some ops have only oneDNN's slow reference kernel in them.
enum class ActivationLayout { kAuto, kNhwc, kBlocked8, kBlocked16 };

class OneDnnPlan {
 public:
  // `dtype`: kFloat, or kBFloat16 (weights and activations; biases and logits float32). `autotune`: each
  // convolution takes the fastest of oneDNN's implementations for it, timed when its plan is built (slower
  // to build; the logits may differ between runs in their last bits); false: oneDNN's own first choice.
  // `winograd`: 3x3 stride-1 convolutions with enough channels and tiles run as Winograd F(4x4, 3x3)
  // (run/winograd_conv.h; float32 nhwc); false: every convolution direct.
  explicit OneDnnPlan(const InferenceGraph& graph, torch::ScalarType dtype = torch::kFloat,
                      ActivationLayout layout = ActivationLayout::kAuto, bool autotune = false,
                      bool winograd = true);
  ~OneDnnPlan();
  OneDnnPlan(const OneDnnPlan&) = delete;
  OneDnnPlan& operator=(const OneDnnPlan&) = delete;

  // `x`: normalised float NCHW (any strides); returns float32 logits [N, classes]. The first call for a new
  // input shape builds its plan (primitives, reordered weights, buffers); later calls only execute.
  torch::Tensor forward(const torch::Tensor& x);
  // The same from decoded pixels: `images` uint8 [N, H, W, 3] (the loaders' batches), normalised per channel
  // with normalize_images' constants ((x / 255 - mean) / std; a value may differ from it in its last bit) by
  // the plan's first two primitives, uint8 -> float32 and x * scale + shift, written in the stem's layout:
  // two passes over the batch instead of three.
  torch::Tensor forward_images(const torch::Tensor& images, const std::array<double, 3>& mean,
                               const std::array<double, 3>& std);
  torch::ScalarType dtype() const { return dtype_; }
  // One line per primitive of the plan for `input_shape` (built if needed): the op, oneDNN's implementation
  // name ("brg:avx512_core", "jit:avx2", "ref:any", ...) and the memory formats.
  std::vector<std::string> describe(const std::vector<int64_t>& input_shape);
  // Bytes the plan for `input_shape` holds: activation buffers (shared by liveness), the scratchpad, and
  // what the activations would take unshared.
  struct MemoryUse {
    int64_t buffers = 0, scratchpad = 0, unshared = 0;
  };
  MemoryUse memory_use(const std::vector<int64_t>& input_shape);

  struct Shape;  // one input shape's primitives and memories (onednn_plan.cpp)

 private:
  Shape& plan_for(const std::vector<int64_t>& input_shape);
  torch::Tensor run(Shape& p);  // the steps from value 0 (already written) to the logits
  std::unique_ptr<Shape> build_plan(const std::vector<int64_t>& input_shape, ActivationLayout layout) const;

  InferenceGraph graph_;
  torch::ScalarType dtype_;
  ActivationLayout layout_;
  bool autotune_;
  bool winograd_;
  std::map<std::vector<int64_t>, std::unique_ptr<Shape>> plans_;
  std::mutex mutex_;  // one forward at a time: a plan's buffers are shared by its calls
};

}  // namespace convnets
