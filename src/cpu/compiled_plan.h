// One input shape's compiled oneDNN plan (cpu/onednn_plan.h): its steps, the memories they bind and the
// storage under them. Made by the lowering passes (cpu/plan_lowering.h), run by OneDnnPlan.
#pragma once
#include <torch/types.h>

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cpu/onednn_plan.h"
#include "cpu/winograd_conv.h"
#include "data/loader.h"

namespace convnets {

// oneDNN's CPU engine, one per process.
const dnnl::engine& cpu_engine();

// Values (the graph's numbered tensors) live in shared buffers assigned by liveness; a convolution whose
// residual is read for the last time accumulates into the residual's buffer (oneDNN's sum post-op), and the
// squeeze-excitation multiply and the separate add run in place.
struct OneDnnPlan::CompiledPlan {
  struct Step {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;  // weights, bias: fixed
    std::vector<std::pair<int, int>> values;     // (argument, value) bound once the buffers exist
    // (argument, value) bound as a plain vector of the value's channels (a batch-1 gate read as scales).
    std::vector<std::pair<int, int>> channel_values;
    std::shared_ptr<WinogradConv> winograd;  // runs in place of `primitive`, SRC and DST bound as above
    bool scratchpad = false;
    dnnl::memory::desc scratchpad_desc;
    std::string info;
  };
  std::vector<Step> steps;
  std::vector<dnnl::memory::desc> value_desc;
  std::vector<int> value_buffer;          // per value: its buffer (-1: the input before the stem, the logits)
  std::vector<torch::Tensor> buffers;     // byte storage (64-byte aligned by LibTorch's CPU allocator)
  std::vector<torch::Tensor> keep_alive;  // biases and other LibTorch storage the primitives read
  int64_t scratchpad_bytes = 0, winograd_floats = 0;
  torch::Tensor scratchpad;
  torch::Tensor winograd_work;     // float32, shared by the Winograd convolutions
  dnnl::memory input_user, input;  // the caller's float NCHW batch, and value 0 in the stem's layout
  dnnl::reorder input_reorder;
  dnnl::memory input_user_nhwc;  // the same batch given channels_last (normalize_images' output)
  dnnl::reorder input_reorder_nhwc;
  // forward_images: uint8 NHWC pixels -> value 0 as x * scale + shift per channel (built on first use, and
  // again if the caller's mean / std change).
  struct ImageInput {
    PixelNormalization constants;
    std::vector<float> scale_row, shift_row;  // per channel, repeated along an image row
    dnnl::memory pixels, scale_memory, shift_memory, normalized;
    dnnl::reorder convert;   // uint8 -> float32 (oneDNN's binary kernels take no uint8 input)
    dnnl::binary normalize;  // in place
  };
  std::unique_ptr<ImageInput> image_input;
  dnnl::memory logits;
  int64_t batch = 0, num_classes = 0;
  MemoryUse use;
  dnnl::stream stream{cpu_engine()};
};

}  // namespace convnets
