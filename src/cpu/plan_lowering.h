// The oneDNN plan's passes after its decisions (cpu/onednn_plan.h): each op lowered into oneDNN primitives by
// the function for its kind, then the buffers bound. A new op kind is one lowering function here and its
// decision in cpu/plan_decisions.h (docs/architecture.md, "Evaluation and inference").
#pragma once
#include <vector>

#include "cpu/compiled_plan.h"
#include "cpu/plan_decisions.h"
#include "models/buffer_plan.h"

namespace convnets {

// Lowers `ops` (the graph's, after rewrites) for input values of `shapes` into `plan`'s steps, reordering
// the weights; returns what each step reads and writes, and in place of what, for the buffer plan.
// `int8` (the scales of a quantized graph, or null): the int8 plan, whose steps also quantize values into
// u8 copies (numbered after the graph's values) and dequantize them where a float op reads them.
std::vector<BufferUse> lower_ops(const InferenceGraph& graph, const std::vector<PlanOp>& ops,
                                 const std::vector<ValueShape>& shapes, torch::ScalarType dtype,
                                 const PlanOptions& options, const QuantizedGraph* int8,
                                 OneDnnPlan::CompiledPlan& plan);

// The bytes each value of `plan` takes in the layout its lowering gave it.
std::vector<int64_t> value_bytes(const OneDnnPlan::CompiledPlan& plan);

// Allocates the buffers of `buffers` and the scratchpads, and binds every step's memories over them and the
// input reorders for an input of `input_shape` (float32 NCHW or channels_last).
void bind_plan(const std::vector<int64_t>& input_shape, const BufferPlan& buffers, int logits_value,
               OneDnnPlan::CompiledPlan& plan);

}  // namespace convnets
