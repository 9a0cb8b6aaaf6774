#include "cpu/plan_decisions.h"

#include <torch/torch.h>

#include <algorithm>

#include "cpu/winograd_conv.h"

namespace convnets {

ActivationLayout resolved_layout(ActivationLayout layout) {
  return layout == ActivationLayout::kAuto ? ActivationLayout::kNhwc : layout;
}

std::vector<int> PlanOp::reads() const {
  std::vector<int> r{input};
  if (other >= 0) r.push_back(other);
  if (gate >= 0) r.push_back(gate);
  return r;
}

std::vector<PlanOp> plan_ops(const InferenceGraph& graph) {
  std::vector<PlanOp> ops;
  ops.reserve(graph.ops.size());
  for (const InferenceOp& op : graph.ops) ops.push_back({&op, op.input, op.other, -1});
  return ops;
}

std::vector<PlanOp> fold_batch_one_gates(std::vector<PlanOp> ops, const std::vector<ValueShape>& shapes,
                                         bool float32) {
  std::vector<int> readers(shapes.size(), 0);
  for (const PlanOp& op : ops)
    for (const int v : op.reads()) ++readers[static_cast<size_t>(v)];
  std::vector<bool> dropped(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    const InferenceOp& mul = *ops[i].op;
    if (mul.kind != InferenceOpKind::kMul || !float32 || mul.activation != Activation::kNone) continue;
    const ValueShape& map = shapes[static_cast<size_t>(ops[i].input)];
    const ValueShape& gate = shapes[static_cast<size_t>(ops[i].other)];
    if (map.n != 1 || gate.h != 1 || gate.w != 1 || gate.c != map.c || ops[i].other == ops[i].input ||
        readers[static_cast<size_t>(mul.output)] != 1)
      continue;
    const auto reader =
        std::find_if(ops.begin() + static_cast<std::ptrdiff_t>(i) + 1, ops.end(), [&](const PlanOp& r) {
          const std::vector<int> reads = r.reads();
          return std::find(reads.begin(), reads.end(), mul.output) != reads.end();
        });
    if (reader == ops.end()) continue;
    const InferenceOp& conv = *reader->op;
    if (conv.kind != InferenceOpKind::kConv || reader->input != mul.output || conv.groups != 1 ||
        conv.kernel != 1 || conv.stride != 1 || conv.padding != 0 ||
        map.h * map.w < kGateFoldMinPositionsPerChannel * conv.weight.size(0))
      continue;
    reader->input = ops[i].input;
    reader->gate = ops[i].other;
    dropped[i] = true;
  }
  std::vector<PlanOp> kept;
  for (size_t i = 0; i < ops.size(); ++i)
    if (!dropped[i]) kept.push_back(ops[i]);
  return kept;
}

bool plan_runs_winograd(const PlanOp& op, const ValueShape& in, const ValueShape& out,
                        const PlanOptions& options, bool float32, ActivationLayout layout) {
  const InferenceOp& conv = *op.op;
  if (!options.winograd || !float32 || resolved_layout(layout) != ActivationLayout::kNhwc || op.input == 0 ||
      op.gate >= 0)
    return false;
  const auto [top, bottom] = op_padding(conv, in.h);
  const auto [left, right] = op_padding(conv, in.w);
  return WinogradConv::applies({.in_channels = in.c,
                                .out_channels = out.c,
                                .kernel = conv.kernel,
                                .stride = conv.stride,
                                .groups = conv.groups,
                                .padding = {top, bottom, left, right},
                                .residual = op.other >= 0,
                                .activation = conv.activation,
                                .batch = out.n,
                                .out_h = out.h,
                                .out_w = out.w});
}

std::string preferred_implementation(const std::string& first_choice, const InferenceOp& op, int64_t groups,
                                     int64_t in_channels) {
  if (first_choice == kBrgemm1x1Avx2 && groups == 1 && op.kernel == 1) return kJit1x1Avx2;
  if (first_choice == kBrgemmDepthwiseAvx2 && groups == in_channels && groups == op.weight.size(0))
    return kJitDepthwiseAvx2;
  return {};
}

bool is_gemm_implementation(const std::string& implementation) {
  return implementation.find("gemm") != std::string::npos;
}

int64_t group_merge_factor(int64_t groups, int64_t in_channels, GroupMerge policy,
                           const std::function<bool(int64_t merged_groups)>& has_direct_kernel) {
  if (groups <= 1 || groups >= in_channels) return 1;
  if (policy == GroupMerge::kAlways) return groups % 2 == 0 && groups / 2 > 1 ? 2 : 1;
  if (has_direct_kernel(groups)) return 1;
  for (int64_t m = 2; groups % m == 0 && groups / m > 1; m *= 2)
    if (has_direct_kernel(groups / m)) return m;
  return 1;
}

torch::Tensor merged_group_weights(const torch::Tensor& weight, int64_t groups, int64_t factor) {
  const int64_t out = weight.size(0), in_g = weight.size(1), k = weight.size(2), g = groups / factor;
  const int64_t out_g = out / groups;
  torch::Tensor merged = torch::zeros({out, in_g * factor, k, k}, weight.options());
  for (int64_t sub = 0; sub < factor; ++sub)
    merged.view({g, factor, out_g, factor, in_g, k, k})
        .select(3, sub)
        .select(1, sub)
        .copy_(weight.view({g, factor, out_g, in_g, k, k}).select(1, sub));
  return merged;
}

}  // namespace convnets
