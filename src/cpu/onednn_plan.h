// The inference form on the CPU as a fixed oneDNN plan (docs/architecture.md, Evaluation and inference): for
// each input shape the graph is compiled once, in passes (onednn_plan.cpp): decisions (cpu/plan_decisions.h),
// the batch-1 gate rewrite, one lowering per op kind into oneDNN primitives (convolutions with their folded
// bias, the activation and the residual add as post-ops, Winograd convolutions, pooling, the squeeze-
// excitation multiply, the classifier as an inner product; weights reordered once into the layout each
// primitive picks), buffers shared by liveness (models/buffer_plan.h) and one scratchpad, all preallocated,
// then bound. Linked against its own oneDNN (the venv's onednn-cpu-gomp wheel, sharing torch's OpenMP
// runtime); everything else stays on LibTorch.
#pragma once
#include <torch/types.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/cpu_options.h"
#include "models/inference_graph.h"

namespace convnets {

// Whether the CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX), as oneDNN sees it.
bool onednn_plan_bf16_supported();
// "avx512_core_bf16", "avx2", ...: oneDNN's instruction set on this CPU; "" without oneDNN.
std::string onednn_cpu_isa();
// The int8 weights' range the plan runs exactly on this CPU: 127 with VNNI (u8 x s8 products summed in
// 32 bits); 63 on AVX2 and AVX-512 without it, whose kernels add pairs of u8 x s8 products in 16 bits with
// saturation (255 * 63 * 2 fits in 32767; 255 * 127 * 2 does not). docs/int8.md.
int onednn_int8_weight_levels();

struct QuantizedGraph;

class OneDnnPlan {
 public:
  // `dtype`: kFloat, or kBFloat16 (weights and activations; biases and logits float32).
  explicit OneDnnPlan(const InferenceGraph& graph, torch::ScalarType dtype = torch::kFloat,
                      const PlanOptions& options = {});
  // The int8 plan of a quantized graph (models/quantization.h), quantized with at most
  // onednn_int8_weight_levels(): every int8 value stored as u8 (zero point 128 where signed, so every
  // convolution multiplies u8 by s8), each convolution and the classifier an int8 convolution with its
  // scales, bias, residual and activation fused, writing its output as u8 directly where only int8 readers
  // read it, float32 elsewhere. Gives run_quantized_graph's logits up to float32 rounding (docs/int8.md).
  explicit OneDnnPlan(const QuantizedGraph& int8, const PlanOptions& options = {});
  ~OneDnnPlan();
  OneDnnPlan(const OneDnnPlan&) = delete;
  OneDnnPlan& operator=(const OneDnnPlan&) = delete;

  // `x`: normalised float NCHW (any strides); returns float32 logits [N, classes]. The first call for a new
  // input shape compiles its plan (primitives, reordered weights, buffers); later calls only execute.
  torch::Tensor forward(const torch::Tensor& x);
  // The same from decoded pixels: `images` uint8 [N, H, W, 3] (the loaders' batches), normalised per channel
  // with normalize_images' constants ((x / 255 - mean) / std; a value may differ from it in its last bit) by
  // the plan's first two primitives, uint8 -> float32 and x * scale + shift, written in the stem's layout:
  // two passes over the batch instead of three.
  torch::Tensor forward_images(const torch::Tensor& images, const std::array<double, 3>& mean,
                               const std::array<double, 3>& std);
  torch::ScalarType dtype() const { return dtype_; }
  bool int8() const { return int8_ != nullptr; }
  // One line per step of the plan for `input_shape` (compiled if needed): the op, oneDNN's implementation
  // name ("brg:avx512_core", "jit:avx2", "ref:any", ...) or the Winograd convolution's.
  std::vector<std::string> describe(const std::vector<int64_t>& input_shape);
  // Bytes the plan for `input_shape` holds: activation buffers (shared by liveness), the scratchpad, and
  // what the activations would take unshared.
  struct MemoryUse {
    int64_t buffers = 0, scratchpad = 0, unshared = 0;
  };
  MemoryUse memory_use(const std::vector<int64_t>& input_shape);

  struct CompiledPlan;  // one input shape's steps, memories and buffers (onednn_plan.cpp)

 private:
  CompiledPlan& plan_for(const std::vector<int64_t>& input_shape);
  std::unique_ptr<CompiledPlan> compile(const std::vector<int64_t>& input_shape) const;
  torch::Tensor run(CompiledPlan& p);  // the steps from value 0 (already written) to the logits

  InferenceGraph graph_;
  torch::ScalarType dtype_;
  PlanOptions options_;
  std::shared_ptr<const QuantizedGraph> int8_;  // the int8 plan's scales (its graph is graph_)
  std::map<std::vector<int64_t>, std::unique_ptr<CompiledPlan>> plans_;
  std::mutex mutex_;  // one forward at a time: a plan's buffers are shared by its calls
};

}  // namespace convnets
