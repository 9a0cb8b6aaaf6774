// The oneDNN plan's rules on their own, without building or running a primitive: the AVX2 kernel rule, the
// batch-1 gate folding rewrite, where Winograd applies, and the group merge (its factor, and its weights
// against a block-diagonal reference in float64).
#include "cpu/plan_decisions.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cpu/winograd_conv.h"

namespace convnets {
namespace {

InferenceOp conv_op(int64_t out, int64_t in, int64_t kernel, int64_t groups = 1, int64_t stride = 1) {
  InferenceOp op;
  op.kind = InferenceOpKind::kConv;
  op.weight = torch::zeros({out, in / groups, kernel, kernel});
  op.bias = torch::zeros({out});
  op.kernel = kernel;
  op.stride = stride;
  op.padding = kernel / 2;
  op.groups = groups;
  return op;
}

TEST(PlanDecisions, Avx2KernelRule) {
  const InferenceOp pointwise = conv_op(64, 32, 1), spatial = conv_op(64, 32, 3),
                    depthwise = conv_op(32, 32, 3, 32);
  EXPECT_EQ(preferred_implementation("brgconv_1x1:avx2", pointwise, 1, 32), "jit_1x1:avx2");
  EXPECT_EQ(preferred_implementation("brgconv_1x1:avx512_core", pointwise, 1, 32), "");
  EXPECT_EQ(preferred_implementation("brgconv:avx2", spatial, 1, 32), "");
  EXPECT_EQ(preferred_implementation("brdgmm_dw:avx2", depthwise, 32, 32), "jit_dw:avx2");
  EXPECT_EQ(preferred_implementation("brdgmm_dw:avx512_core", depthwise, 32, 32), "");
  // Grouped but not depthwise: no rule.
  EXPECT_EQ(preferred_implementation("brdgmm_dw:avx2", conv_op(64, 32, 3, 8), 8, 32), "");
}

// stem conv -> map (value 1) -> global pool (2) -> 1x1 conv, the gate (3) -> map * gate (4) -> 1x1
// projection (5) -> pool (6) -> classifier (7): a squeeze-excitation block.
struct SeGraph {
  InferenceGraph graph;
  explicit SeGraph(int64_t projection_out) {
    auto add = [&](InferenceOp op, int input, int other = -1) {
      op.input = input;
      op.other = other;
      op.output = graph.num_values++;
      graph.ops.push_back(op);
      return op.output;
    };
    InferenceOp pool;
    pool.kind = InferenceOpKind::kGlobalAvgPool;
    InferenceOp mul;
    mul.kind = InferenceOpKind::kMul;
    InferenceOp fc;
    fc.kind = InferenceOpKind::kLinear;
    fc.weight = torch::zeros({10, projection_out});
    fc.bias = torch::zeros({10});
    const int map = add(conv_op(16, 3, 3), 0);
    const int pooled = add(pool, map);
    const int gate = add(conv_op(16, 16, 1), pooled);
    const int product = add(mul, map, gate);
    const int projected = add(conv_op(projection_out, 16, 1), product);
    graph.output = add(fc, add(pool, projected));
  }
};

TEST(PlanDecisions, BatchOneGatesFoldIntoTheProjectionWhereTheMapOutweighsIt) {
  const SeGraph se(24);
  auto fold = [&](int64_t n, int64_t size, bool float32) {
    const auto shapes = value_shapes(se.graph, {n, 3, size, size});
    return fold_batch_one_gates(plan_ops(se.graph), shapes, float32);
  };
  // 20x20 = 400 positions >= 16 x 24 output channels: the multiply is dropped, the projection reads the map
  // (value 1) scaled by the gate (value 3).
  const auto folded = fold(1, 20, true);
  ASSERT_EQ(folded.size(), se.graph.ops.size() - 1);
  EXPECT_EQ(folded[3].op->kind, InferenceOpKind::kConv);
  EXPECT_EQ(folded[3].input, 1);
  EXPECT_EQ(folded[3].gate, 3);
  EXPECT_EQ(folded[3].reads(), (std::vector<int>{1, 3}));
  // 19x19 = 361 < 384: kept; batch 2, bfloat16: kept.
  for (const auto& kept : {fold(1, 19, true), fold(2, 20, true), fold(1, 20, false)}) {
    ASSERT_EQ(kept.size(), se.graph.ops.size());
    EXPECT_EQ(kept[3].op->kind, InferenceOpKind::kMul);
    for (const PlanOp& op : kept) EXPECT_EQ(op.gate, -1);
  }
  EXPECT_EQ(kGateFoldMinPositionsPerChannel, 16);
}

TEST(PlanDecisions, WinogradAppliesToWideStrideOneThreeByThreesWithTilesEnough) {
  WinogradCase c{.in_channels = 64,
                 .out_channels = 64,
                 .kernel = 3,
                 .stride = 1,
                 .groups = 1,
                 .padding = {1, 1, 1, 1},
                 .residual = false,
                 .activation = Activation::kReLU,
                 .batch = 1,
                 .out_h = 16,
                 .out_w = 16};
  EXPECT_TRUE(WinogradConv::applies(c));          // 16 tiles
  EXPECT_EQ(WinogradConv::tiles(1, 14, 14), 16);  // partial tiles count whole
  EXPECT_EQ(WinogradConv::tiles(3, 7, 7), 12);
  auto with = [&](auto change) {
    WinogradCase d = c;
    change(d);
    return WinogradConv::applies(d);
  };
  EXPECT_FALSE(with([](WinogradCase& d) { d.out_h = 12; }));  // 12 tiles
  EXPECT_FALSE(with([](WinogradCase& d) { d.in_channels = 56; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.out_channels = 32; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.residual = true; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.activation = Activation::kSiLU; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.stride = 2; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.padding = {0, 1, 0, 1}; }));
  EXPECT_FALSE(with([](WinogradCase& d) { d.groups = 2; }));
  EXPECT_TRUE(with([](WinogradCase& d) { d.activation = Activation::kNone; }));

  // The plan's own conditions: float32 nhwc, not the stem, no gate folded in, the option on.
  InferenceGraph g;
  g.ops.push_back(conv_op(64, 64, 3));
  PlanOp op{&g.ops[0], 1, -1, -1};
  const ValueShape in{1, 64, 16, 16}, out{1, 64, 16, 16};
  EXPECT_TRUE(plan_runs_winograd(op, in, out, {}, true, ActivationLayout::kAuto));
  EXPECT_FALSE(plan_runs_winograd(op, in, out, {.winograd = false}, true, ActivationLayout::kAuto));
  EXPECT_FALSE(plan_runs_winograd(op, in, out, {}, false, ActivationLayout::kAuto));
  EXPECT_FALSE(plan_runs_winograd(op, in, out, {}, true, ActivationLayout::kBlocked8));
  PlanOp stem = op, gated = op;
  stem.input = 0;
  gated.gate = 2;
  EXPECT_FALSE(plan_runs_winograd(stem, in, out, {}, true, ActivationLayout::kAuto));
  EXPECT_FALSE(plan_runs_winograd(gated, in, out, {}, true, ActivationLayout::kAuto));
}

TEST(PlanDecisions, NarrowGroupsMergeUntilADirectKernelTakesThem) {
  // A direct kernel for groups of at least 16 channels: 32 groups of 4 merge by 4 (8 groups of 16).
  auto sixteen_wide = [](int64_t channels) { return [channels](int64_t g) { return channels / g >= 16; }; };
  EXPECT_EQ(group_merge_factor(32, 128, GroupMerge::kWhereNoDirectKernel, sixteen_wide(128)), 4);
  EXPECT_EQ(group_merge_factor(32, 512, GroupMerge::kWhereNoDirectKernel, sixteen_wide(512)), 1);
  // No factor helps: none.
  EXPECT_EQ(group_merge_factor(4, 8, GroupMerge::kWhereNoDirectKernel, [](int64_t) { return false; }), 1);
  // Depthwise and plain convolutions are never merged; kAlways merges by 2 whatever the kernels.
  EXPECT_EQ(group_merge_factor(64, 64, GroupMerge::kAlways, [](int64_t) { return false; }), 1);
  EXPECT_EQ(group_merge_factor(1, 64, GroupMerge::kAlways, [](int64_t) { return false; }), 1);
  EXPECT_EQ(group_merge_factor(32, 128, GroupMerge::kAlways, [](int64_t) { return true; }), 2);
  EXPECT_EQ(group_merge_factor(2, 128, GroupMerge::kAlways, [](int64_t) { return true; }), 1);
  EXPECT_TRUE(is_gemm_implementation("gemm:jit"));
  EXPECT_FALSE(is_gemm_implementation("jit:avx2"));
}

// Merged weights are the block-diagonal form of the groups: the same convolution, in float64, whatever the
// factor; a block put one group off gives another one.
TEST(PlanDecisions, MergedGroupWeightsAreBlockDiagonal) {
  torch::manual_seed(1);
  const int64_t groups = 8, in = 32, out = 48;
  const torch::Tensor w = torch::randn({out, in / groups, 3, 3}, torch::kDouble);
  const torch::Tensor x = torch::randn({2, in, 9, 9}, torch::kDouble);
  const torch::Tensor expected = torch::conv2d(x, w, {}, 1, 1, 1, groups);
  for (const int64_t m : {2, 4, 8}) {
    const torch::Tensor merged = merged_group_weights(w, groups, m);
    ASSERT_EQ(merged.sizes(), (std::vector<int64_t>{out, m * in / groups, 3, 3}));
    EXPECT_TRUE(torch::allclose(torch::conv2d(x, merged, {}, 1, 1, 1, groups / m), expected, 0, 1e-12)) << m;
    // Off the diagonal everything is zero: as many non-zeros as the grouped weights have.
    EXPECT_EQ(merged.ne(0).sum().item<int64_t>(), w.ne(0).sum().item<int64_t>()) << m;
  }
  const torch::Tensor shifted = merged_group_weights(w, groups, 2).roll(in / groups, 1);
  EXPECT_FALSE(torch::allclose(torch::conv2d(x, shifted, {}, 1, 1, 1, groups / 2), expected, 0, 1e-6));
}

}  // namespace
}  // namespace convnets
