// The oneDNN plan's decisions (cpu/onednn_plan.h), apart from building anything: how each op of the graph
// will run, as functions of shapes, options and the names of the implementations oneDNN offers, so that each
// rule is testable without running oneDNN. Why each rule holds: docs/architecture.md, "Evaluation and
// inference"; the figures behind them: the README's CPU inference section and bench/winograd_bench.cpp.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "cpu/cpu_options.h"
#include "models/inference_graph.h"

namespace convnets {

// nhwc for kAuto: as fast as the blocked layouts for every family on AVX-512 and AVX2, and the one layout
// where oneDNN 3.2 has an optimised kernel for every op of every family (a grouped convolution with fewer
// channels per group than the block, or a broadcast multiply in nChw8c on AVX-512, runs its reference
// kernel in the blocked ones, two orders of magnitude slower).
ActivationLayout resolved_layout(ActivationLayout layout);

// One op as the plan runs it: the graph's op, with the operands a rewrite may have changed.
struct PlanOp {
  const InferenceOp* op = nullptr;
  int input = 0, other = -1;
  // kConv: a squeeze-excitation gate ([N, C, 1, 1]) whose channels scale this convolution's weights on every
  // call, in place of the multiply that fed it (fold_batch_one_gates).
  int gate = -1;
  std::vector<int> reads() const;  // input, other, gate: the values the step reads, in that order
};
std::vector<PlanOp> plan_ops(const InferenceGraph& graph);

// Batch 1, float32: a squeeze-excitation gate multiplying a map that only a 1x1 stride-1 convolution reads is
// folded into that convolution's weights (C x Cout products in place of H x W x C) where the map has at
// least kGateFoldMinPositionsPerChannel positions per output channel of the convolution: the scaling reorder
// into the packed weights costs several times the multiply per value, plus a fixed cost (the README's CPU
// inference section has the measurement). The multiply is dropped and the convolution reads the map itself,
// with `gate` set.
constexpr int64_t kGateFoldMinPositionsPerChannel = 16;
std::vector<PlanOp> fold_batch_one_gates(std::vector<PlanOp> ops, const std::vector<ValueShape>& shapes,
                                         bool float32);

// Whether the plan runs a convolution as Winograd F(4x4, 3x3): options.winograd, float32 nhwc activations,
// not the stem (which reads the caller's input in its own layout), no gate folded in, and where
// WinogradConv::applies.
bool plan_runs_winograd(const PlanOp& op, const ValueShape& in, const ValueShape& out,
                        const PlanOptions& options, bool float32, ActivationLayout layout);

// Implementations oneDNN 3.2 offers, by name.
inline constexpr const char* kBrgemm1x1Avx2 = "brgconv_1x1:avx2";
inline constexpr const char* kJit1x1Avx2 = "jit_1x1:avx2";
inline constexpr const char* kBrgemmDepthwiseAvx2 = "brdgmm_dw:avx2";
inline constexpr const char* kJitDepthwiseAvx2 = "jit_dw:avx2";
inline constexpr const char* kAmx1x1Int8 = "jit_1x1:avx512_core_amx";  // int8: writes past its output
// The most implementations of one primitive the plan walks through (oneDNN 3.2 offers fewer per ISA).
constexpr int kMaxImplementations = 8;

// The implementation a convolution runs in place of oneDNN's first choice (""; keep it). On AVX2 (no AVX-512)
// oneDNN 3.2 first picks its brgemm kernels for 1x1 and depthwise convolutions in nhwc, and its older jit
// kernels run them faster there. A fixed rule, keyed on the implementation oneDNN would pick, so it holds on
// AVX2 hosts only and no timing decides the logits (--cpu_autotune times them instead).
std::string preferred_implementation(const std::string& first_choice, const InferenceOp& op, int64_t groups,
                                     int64_t in_channels);

// How many neighbouring groups of a grouped convolution to merge into one (1: none). Groups narrower than the
// CPU's vector (ResNeXt's first stage: 4 channels, on AVX2) have no direct kernel in oneDNN 3.2, which falls
// back to its gemm-based convolution, an order of magnitude slower; m groups merged, their weights
// block-diagonal (the same sums, m x the products), give groups a direct kernel takes (bench/winograd_bench
// --kernels measures both). The smallest m (a power of 2 dividing the groups and leaving more than one) for
// which `has_direct_kernel(groups / m)`; kAlways merges by 2 where the groups allow, whatever the kernels.
int64_t group_merge_factor(int64_t groups, int64_t in_channels, GroupMerge policy,
                           const std::function<bool(int64_t merged_groups)>& has_direct_kernel);
// Whether an implementation name is oneDNN's gemm-based convolution (no direct kernel).
bool is_gemm_implementation(const std::string& implementation);
// A grouped convolution's weights [K, C / G, k, k] as those of G / m groups: [K, m C / G, k, k], block-
// diagonal, zeros between the merged groups.
torch::Tensor merged_group_weights(const torch::Tensor& weight, int64_t groups, int64_t factor);

}  // namespace convnets
