// The oneDNN int8 plan (cpu/onednn_plan.h) against the float64 simulation of the same quantized graph
// (models/quantization.h): the same integers, scales, zero points and fused ops in every family, on this
// CPU's instruction set (and AVX2's in the avx2.* copies, with 7-bit weights).
#include <gtest/gtest.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>

#include "cpu/onednn_plan.h"
#include "cpu/plan_decisions.h"
#include "cpu/randomised_model.h"
#include "models/inference_graph.h"
#include "models/quantization.h"
#include "models/registry.h"
#include "test_support.h"

namespace convnets {
namespace {

ConvNetPtr int8_test_model(const std::string& arch) {
  return testing::randomised_model(arch, 11);
}

// The bound, derived (docs/int8.md, "The int8 plan"). The plan's integer sums are exact; it differs from the
// float64 simulation by float32 rounding in the dequantize-bias-activation chain (relative ~1e-6, oneDNN's
// SiLU / sigmoid approximations included), which moves a value across a rounding boundary of its grid with
// probability p <= 2 * 1e-6 * 255 ~ 5e-4. Such a flip is an error of one step, where the quantization leaves
// a uniform error of RMS step / sqrt(12) in every value: per requantized value the flips' noise is
// sqrt(12 p) ~ 0.08 of the quantization's, and over the k <= 10 requantized values of two blocks (MBConvs
// with their squeeze-excitations) they add in quadrature: sqrt(k * 12 p) ~ 0.25. Held to 0.75 (3x; measured
// on these families: at most 0.58, on AVX-512 VNNI and AMX; 0.17 on AVX2) of the simulation's own distance to
// float64 (max calibration: rounding, no clipping).
// Over a whole network that no longer holds: a flip moves the sums of the next layer, which round anew, and
// after some tens of layers the two roundings are independent (ATen's float32 run of the same simulation
// drifts from the float64 one as far). Two independent roundings of the same noise differ by sqrt(2) times
// it: the whole-network bound.
constexpr double kWindowRatio = 0.75;
constexpr double kWholeNetworkRatio = 1.5;  // sqrt(2), and a margin

// The ops of `g` from `first` to `last` (exclusive), which read only value `input` from before them, as a
// graph of their own: `input` becomes value 0, and a global average pool and a classifier (random weights,
// fixed seed) follow the last op.
InferenceGraph window_graph(const InferenceGraph& g, size_t first, size_t last, int input,
                            const std::vector<ValueShape>& shapes) {
  InferenceGraph w;
  w.arch = g.arch;
  for (size_t i = first; i < last; ++i) {
    InferenceOp op = g.ops[i];
    op.input -= input;
    op.output -= input;
    if (op.other >= 0) op.other -= input;
    w.ops.push_back(op);
  }
  const int end = w.ops.back().output;
  const int64_t channels = shapes[static_cast<size_t>(g.ops[last - 1].output)].c;
  InferenceOp pool;
  pool.kind = InferenceOpKind::kGlobalAvgPool;
  pool.input = end;
  pool.output = end + 1;
  pool.name = "window_pool";
  InferenceOp fc;
  fc.kind = InferenceOpKind::kLinear;
  fc.input = end + 1;
  fc.output = end + 2;
  fc.name = "window_fc";
  torch::manual_seed(5);
  fc.weight = torch::randn({10, channels}, torch::kDouble) / std::sqrt(static_cast<double>(channels));
  fc.bias = torch::randn({10}, torch::kDouble) * 0.1;
  w.ops.push_back(pool);
  w.ops.push_back(fc);
  w.num_values = end + 3;
  w.output = end + 2;
  w.num_classes = 10;
  return w;
}

struct Compared {
  double plan_error = 0, quantization_error = 0;
};
// The plan of `planned` (by default `q` itself) against the simulation of `q`.
Compared compare(const QuantizedGraph& q, const InferenceGraph& g, const torch::Tensor& x,
                 const PlanOptions& options = {}, const QuantizedGraph* planned = nullptr) {
  const torch::Tensor simulated = run_quantized_graph(q, x.to(torch::kDouble));
  OneDnnPlan plan(planned ? *planned : q, options);
  return {testing::rel_error(plan.forward(x.to(torch::kFloat)), simulated),
          testing::rel_error(simulated, run_inference_graph(g, x.to(torch::kDouble)))};
}

QuantizedGraph quantized(const InferenceGraph& g, const torch::Tensor& x) {
  Int8Calibrator calibrator(g);
  calibrator.observe(x.to(torch::kDouble));
  return quantize_graph(g, calibrator.result("test", CalibrationMethod::kMax, 100), "test",
                        onednn_int8_weight_levels());
}

class Int8Plan : public ::testing::TestWithParam<std::string> {};

// Two blocks at a time: each stretch of ops between two points where one value alone is live (a block's
// input) and the next but one, run from the float64 network's value there. Within it the derived bound holds.
TEST_P(Int8Plan, EachBlockGivesTheSimulationsLogits) {
  const std::string arch = GetParam();
  ConvNetPtr model = int8_test_model(arch);
  torch::manual_seed(3);
  // 45 px: odd maps at every stride, "same" padding at the bottom / right edges, 1x1 maps at the end.
  const torch::Tensor x = torch::randn({3, 3, 45, 45}, torch::kDouble);
  const InferenceGraph g = inference_graph(*model, arch, torch::kDouble);
  const std::vector<ValueShape> shapes = value_shapes(g, {3, 3, 45, 45});
  std::vector<torch::Tensor> values(static_cast<size_t>(g.num_values));
  run_inference_graph(g, x, [&](int v, const torch::Tensor& t) {
    values[static_cast<size_t>(v)] = t;
    return t;
  });
  std::vector<int> last_read(static_cast<size_t>(g.num_values), -1);
  for (size_t i = 0; i < g.ops.size(); ++i)
    for (const int v : {g.ops[i].input, g.ops[i].other})
      if (v >= 0) last_read[static_cast<size_t>(v)] = static_cast<int>(i);
  // Boundaries: before op i, only the output of op i - 1 (or the input) is still to be read.
  std::vector<size_t> starts{0};
  for (size_t i = 1; i + 1 < g.ops.size(); ++i) {
    bool alone = true;
    for (int v = 0; v < g.ops[i - 1].output && alone; ++v)
      alone = last_read[static_cast<size_t>(v)] < static_cast<int>(i);
    if (alone && g.ops[i].kind == InferenceOpKind::kConv) starts.push_back(i);
  }
  starts.push_back(g.ops.size() - 1);  // the classifier's own window is the whole network's tail
  ASSERT_GE(starts.size(), 6u) << "blocks found";
  int windows = 0;
  // Two blocks at a time: the first one's output is written as u8 and the second reads it, its residual too.
  for (size_t b = 0; b + 2 < starts.size(); ++b) {
    const size_t first = starts[b], last = starts[b + 2];
    const int input = g.ops[first].input;
    const InferenceGraph w = window_graph(g, first, last, input, shapes);
    const torch::Tensor xw = values[static_cast<size_t>(input)];
    const QuantizedGraph q = quantized(w, xw);
    const Compared c = compare(q, w, xw);
    ASSERT_GT(c.quantization_error, 1e-4) << "int8 rounding shows in the logits";
    EXPECT_LT(c.plan_error, kWindowRatio * c.quantization_error)
        << g.ops[first].name << " .. " << g.ops[last - 1].name << ": quantization error "
        << c.quantization_error;
    ++windows;
    if (b == 1) {
      // The bound tells a wrong zero point (the window's first int8 value after its input stored with the
      // other signedness: zero point 128 for 0 or back) and wrong integer weights (the first convolution's
      // weights 1.1x in the plan: its integers are not the simulation's). A wrong scale used consistently is
      // not among them: it is a coarser grid, which rounds as well.
      QuantizedGraph wrong_zero_point = q;
      size_t flipped = 1;
      while (flipped < q.value_scale.size() && q.value_scale[flipped] == 0) ++flipped;
      ASSERT_LT(flipped, q.value_scale.size());
      wrong_zero_point.value_unsigned[flipped] = !wrong_zero_point.value_unsigned[flipped];
      EXPECT_GT(compare(q, w, xw, {}, &wrong_zero_point).plan_error, kWindowRatio * c.quantization_error);
      QuantizedGraph wrong_weights = q;
      wrong_weights.graph.ops[0].weight = wrong_weights.graph.ops[0].weight * 1.1;
      EXPECT_GT(compare(q, w, xw, {}, &wrong_weights).plan_error, kWindowRatio * c.quantization_error);
    }
  }
  EXPECT_GE(windows, 5);
}

// The whole network, with its own calibration; batch 1; the plan's steps.
TEST_P(Int8Plan, WholeNetworkAndItsSteps) {
  const std::string arch = GetParam();
  ConvNetPtr model = int8_test_model(arch);
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({3, 3, 45, 45});
  const InferenceGraph g = inference_graph(*model, arch, torch::kDouble);
  const QuantizedGraph q = quantized(g, x);
  if (onednn_int8_weight_levels() < 127) {  // 8-bit weights would saturate this CPU's int8 kernels
    Int8Calibrator calibrator(g);
    calibrator.observe(x.to(torch::kDouble));
    EXPECT_THROW(
        OneDnnPlan(quantize_graph(g, calibrator.result("t", CalibrationMethod::kMax, 100), "t", 127)),
        std::invalid_argument);
  }
  std::vector<PlanOptions> options{{}};
  if (arch.rfind("resnext", 0) == 0) options.push_back({.group_merge = GroupMerge::kAlways});
  for (const PlanOptions& o : options) {
    const Compared c = compare(q, g, x, o);
    EXPECT_LT(c.plan_error, kWholeNetworkRatio * c.quantization_error)
        << "merge " << static_cast<int>(o.group_merge);
    OneDnnPlan plan(q, o);
    ASSERT_TRUE(plan.int8());
    const torch::Tensor logits = plan.forward(x);
    const torch::Tensor one = x.narrow(0, 2, 1);
    const Compared c1 = compare(q, g, one, o);
    EXPECT_LT(c1.plan_error, kWholeNetworkRatio * c1.quantization_error) << "batch 1";
    EXPECT_TRUE(torch::equal(plan.forward(x), logits)) << "the same batch twice";
    // Every convolution and the classifier run an int8 kernel of oneDNN (no reference, no gemm fallback).
    int int8_steps = 0;
    for (const std::string& line : plan.describe({3, 3, 45, 45})) {
      if (line.find(" int8 ") == std::string::npos) continue;
      ++int8_steps;
      EXPECT_EQ(line.find("ref"), std::string::npos) << line;
      EXPECT_EQ(line.find("gemm"), std::string::npos) << line;
      EXPECT_EQ(line.find(kAmx1x1Int8), std::string::npos) << line << ": writes past its output";
    }
    int expected = 0;
    for (const InferenceOp& op : g.ops)
      expected += op.kind == InferenceOpKind::kConv || op.kind == InferenceOpKind::kLinear;
    EXPECT_EQ(int8_steps, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, Int8Plan,
                         ::testing::Values("resnet18", "resnet50", "resnext50_32x4d", "efficientnet_b0",
                                           "efficientnet_v2_b0"));

}  // namespace
}  // namespace convnets
