// Where an inference graph's values live while a backend runs it: liveness (the step that reads a value for
// the last time) and buffers shared by liveness, best fit. Every backend of the graph uses the liveness; the
// oneDNN plan (cpu/onednn_plan.h) also preallocates its buffers by this plan.
#pragma once
#include <cstdint>
#include <vector>

#include "models/inference_graph.h"

namespace convnets {

// One step of a backend's run, as far as memory goes: the values it reads (in order), the value it writes,
// and the value whose buffer it writes in place (-1: none), such as a residual accumulated into.
struct BufferUse {
  std::vector<int> reads;
  int output = -1;
  int in_place_of = -1;
};
// The graph's ops as steps, none in place.
std::vector<BufferUse> buffer_uses(const InferenceGraph& graph);

// Per value: the index of the step that reads it last (-1: never read).
std::vector<int> last_reads(const std::vector<BufferUse>& steps, int num_values);

struct BufferPlan {
  std::vector<int> value_buffer;      // per value: its buffer (-1: none, e.g. the input and the output)
  std::vector<int64_t> buffer_bytes;  // per buffer: the most any of its values needs
};
// Buffers for every value but `external` (the caller's output), step by step: a value read before it was
// written (the input, `input`) takes a buffer when first read; a step's output takes the buffer of the value
// it is in place of, else the smallest free buffer that fits, else the largest free one (grown), else a new
// one; after a step, the values it read for the last time give their buffers back (in the order read),
// unless the output shares it.
BufferPlan plan_buffers(const std::vector<BufferUse>& steps, const std::vector<int64_t>& value_bytes,
                        int input, int external);

}  // namespace convnets
