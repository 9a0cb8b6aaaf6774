// The inference form and its ONNX export, for every architecture, on torchvision weights calibrated on
// photos (tests/python/make_model_fixtures.py: BatchNorm statistics that are not the initialisation's, so a
// folding error shows). ONNX Runtime runs the exported files in tests/python/check_onnx.py.
#include "infer/onnx_export.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cpu/fast_inference.h"
#include "cpu/onednn_plan.h"
#include "cpu/winograd_error_ratio.h"
#include "models/inference_graph.h"
#include "models/registry.h"
#include "test_support.h"
#include "util/file_io.h"
#include "util/safetensors.h"
#include "util/weights.h"

namespace convnets {
namespace {

std::string weights_path(const std::string& arch, bool full) {
  if (full) return testing::fixtures_dir() + "/" + arch + "_full.pt";
  const auto& names = model_names();
  const auto index = std::find(names.begin(), names.end(), arch) - names.begin();
  return testing::fixtures_dir() + "/" + arch + (index % 2 == 0 ? ".pt" : ".safetensors");
}

ConvNetPtr torchvision_model(const std::string& arch, bool full) {
  return testing::reference_model(arch, weights_path(arch, full));
}

struct Case {
  std::string arch;
  bool full;  // at the architecture's own resolution (else 64 px)
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.arch << (c.full ? " at its own resolution" : " at 64 px");
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.arch + (info.param.full ? "_full" : "_64px");
}

// Every architecture at 64 px, and the two recipe families' first models at their own 224 px (the app's
// tests/app/check_foreign_weights.py runs EfficientNet-B3 and B4 at 300 and 380 px end to end).
std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& name : model_names()) out.push_back({name, false});
  for (const char* name : {"resnet50", "efficientnet_b0"}) out.push_back({name, true});
  return out;
}

// One architecture per kind of block: basic and bottleneck residual blocks (ResNet-18, -50), grouped
// convolutions (ResNeXt-50), squeeze-excitation with a gate before the add (SE-ResNeXt-101), MBConv with SiLU
// and its gate (B0), FusedMBConv (V2-S), TensorFlow's padding (V2-B0), and the two 224 px cases. Folding, the
// fused form and the ONNX export treat each op the same way whatever the architecture, so these carry their
// checks; the oneDNN plan, whose decisions depend on every layer's shape, runs all of cases().
bool one_per_block(const Case& c) {
  for (const char* name : {"resnet18", "resnet50", "resnext50_32x4d", "se_resnext101_32x4d",
                           "efficientnet_b0", "efficientnet_v2_s", "efficientnet_v2_b0"})
    if (c.arch == name) return true;
  return false;
}

std::vector<Case> onnx_cases() {
  std::vector<Case> out;
  for (const Case& c : cases())
    if (one_per_block(c)) out.push_back(c);
  return out;
}

// OpenVINO runs the file too for one architecture per kind of op: residual convolutions and max pooling,
// squeeze-excitation, grouped convolutions with a gate before the add, TensorFlow padding (auto_pad).
bool with_openvino(const std::string& arch) {
  for (const char* a : {"resnet50", "efficientnet_b0", "se_resnext101_32x4d", "efficientnet_v2_b0"})
    if (arch == a) return true;
  return false;
}

class InferenceForm : public ::testing::TestWithParam<Case> {};

// What every CPU form of one case is compared with, made once: the fixture's photos and references, the
// model, its eager float32 logits (at the fixture's size and at 32 px), and its float32 bound.
struct EagerReference {
  std::map<std::string, torch::Tensor> io;
  ConvNetPtr model;
  torch::Tensor x, eager, small, small_eager;
  double bound = 0;  // the eager model's own float32 bound against float64, or 1e-4
  explicit EagerReference(const Case& c)
      : io(testing::load_fixture(c.arch + (c.full ? "_full_io.safetensors" : "_io.safetensors"))),
        model(torchvision_model(c.arch, c.full)) {
    torch::NoGradGuard no_grad;
    x = io.at("input");
    eager = model->forward(x);
    small = x.narrow(2, 0, 32).narrow(3, 0, 32);
    small_eager = model->forward(small);
    bound = std::max({1e-4, testing::fp32_forward_bound(*model),
                      4 * testing::rel_error(io.at("eval_logits_fp32"), io.at("eval_logits"))});
  }
};

// Folding is exact: in float64 the inference graph gives the eager eval-mode model's logits (summation
// order aside), so any error in a folded weight or a wired residual shows at 1e-10. In float32 the folded
// model is held to the bound the eager model is held to against float64 (tests/parity).
void expect_folding_is_exact(const Case& c, const EagerReference& r) {
  torch::NoGradGuard no_grad;
  const InferenceGraph graph32 = inference_graph(*r.model, c.arch);
  const torch::Tensor folded32 = run_inference_graph(graph32, r.x);
  const double bound = std::max(testing::fp32_forward_bound(*r.model),
                                4 * testing::rel_error(r.io.at("eval_logits_fp32"), r.io.at("eval_logits")));
  ConvNetPtr model64 = torchvision_model(c.arch, c.full);
  model64->to(torch::kDouble);
  const InferenceGraph graph = inference_graph(*model64, c.arch, torch::kDouble);
  const torch::Tensor eager = model64->forward(r.x.to(torch::kDouble));
  ASSERT_GE(testing::distinct_top1(eager), 3) << "the model gives the same class for every photo";
  EXPECT_LT(testing::rel_error(run_inference_graph(graph, r.x.to(torch::kDouble)), eager), 1e-10);
  EXPECT_LT(testing::rel_error(folded32, eager), bound);
  EXPECT_TRUE(torch::equal(folded32.argmax(1), eager.argmax(1)));
  // No BatchNorm is left: one convolution per Conv2d of the model.
  int64_t convs = 0, graph_convs = 0;
  for (const auto& m : model64->modules(false)) convs += m->as<torch::nn::Conv2dImpl>() != nullptr;
  for (const auto& op : graph.ops) graph_convs += op.kind == InferenceOpKind::kConv;
  EXPECT_EQ(graph_convs, convs);
}

// A CPU form (the fused LibTorch kernels or the oneDNN plan) gives the eager model's logits: the bound the
// eager model is held to against float64 (tests/parity), or 1e-4, times `algorithm_factor` (the plan's
// Winograd convolutions round more than direct ones: cpu/winograd_error_ratio.h); the same top-5; at batch 8
// and 1, and at 32 px, where the last stage runs on 1x1 maps.
template <typename Form>
void expect_cpu_form_gives_the_models_logits(const Case& c, const EagerReference& r, Form& form,
                                             const char* form_name, double algorithm_factor = 1) {
  SCOPED_TRACE(form_name);
  const double bound = algorithm_factor * r.bound;
  const torch::Tensor& eager = r.eager;
  const torch::Tensor logits = form.forward(r.x);
  std::printf("%s: %s vs eager %.2e, vs float64 %.2e (bound %.1e)\n", c.arch.c_str(), form_name,
              testing::rel_error(logits, eager), testing::rel_error(logits, r.io.at("eval_logits")), bound);
  EXPECT_LT(testing::rel_error(logits, eager), bound);
  EXPECT_LT(testing::rel_error(logits, r.io.at("eval_logits")), bound) << "against float64";
  // The same top-5 set for every image whose 5th and 6th classes (float64) are further apart than twice that
  // image's largest logit difference between the form and the eager model (closer ones are a float32 tie).
  const auto top5 = [](const torch::Tensor& t) { return std::get<0>(std::get<1>(t.topk(5, 1)).sort(1)); };
  const torch::Tensor sorted = std::get<0>(r.io.at("eval_logits").sort(1, /*descending=*/true));
  const torch::Tensor row_diff = std::get<0>((logits - eager).abs().max(1));
  int64_t checked = 0;
  for (int64_t i = 0; i < logits.size(0); ++i) {
    if ((sorted[i][4] - sorted[i][5]).item<double>() <= 2 * row_diff[i].item<double>()) continue;
    ++checked;
    EXPECT_TRUE(torch::equal(top5(logits.narrow(0, i, 1)), top5(eager.narrow(0, i, 1))))
        << "top-5 set, image " << i;
  }
  std::printf("  top-5 compared on %lld of %lld images\n", static_cast<long long>(checked),
              static_cast<long long>(logits.size(0)));
  EXPECT_GE(checked, 1) << "no image's top-5 is beyond float32's ties";
  // A second batch size reuses nothing stale (weights are packed per input shape), and batch 1 agrees too.
  EXPECT_LT(testing::rel_error(form.forward(r.x.narrow(0, 0, 1)), eager.narrow(0, 0, 1)), bound);
  EXPECT_LT(testing::rel_error(form.forward(r.x), logits), 1e-6);
  EXPECT_LT(testing::rel_error(form.forward(r.small), r.small_eager), bound) << "at 32 px";
}

// The CPU forms of the model against its eager form, on one model and one set of eager logits: the oneDNN
// plan in the layout this CPU gets by default, every primitive one of oneDNN's optimised kernels, none its
// reference implementation (ref:any, a hundred times slower), for every case; and for one architecture per
// kind of block (one_per_block) also the folded graph (exact in float64) and the fused LibTorch form (oneDNN
// convolutions with their activation and residual, prepacked weights; where oneDNN's fused residual add
// cannot run on 1x1 maps it falls back to separate ops).
TEST_P(InferenceForm, CpuFormsGiveTheModelsLogits) {
  const Case c = GetParam();
  const EagerReference r(c);
  const InferenceGraph graph = inference_graph(*r.model, c.arch);
  if (one_per_block(c)) {
    expect_folding_is_exact(c, r);
    ASSERT_TRUE(fast_inference_available()) << "x86-64 LibTorch has oneDNN's fusion kernels";
    FastInference fused(graph);
    expect_cpu_form_gives_the_models_logits(c, r, fused, "fused");
  }
  OneDnnPlan plan(graph);
  expect_cpu_form_gives_the_models_logits(c, r, plan, "oneDNN plan", testing::winograd_error_ratio());
  for (const auto& line : plan.describe(r.x.sizes().vec()))
    EXPECT_EQ(line.find("ref:"), std::string::npos) << line;
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, InferenceForm, ::testing::ValuesIn(cases()), case_name);

class OnnxExport : public ::testing::TestWithParam<Case> {};

// The exported file, in float32 and float16, through ONNX Runtime (tests/python/check_onnx.py): the checker
// (full_check), logits against ours and torchvision's, batches of 1, 7 and 13 through the same file.
TEST_P(OnnxExport, OnnxRuntimeGivesOurLogits) {
  const Case c = GetParam();
  const auto io = testing::load_fixture(c.arch + (c.full ? "_full_io.safetensors" : "_io.safetensors"));
  ConvNetPtr model = torchvision_model(c.arch, c.full);
  const InferenceGraph graph = inference_graph(*model, c.arch);
  const torch::Tensor input = io.at("input");
  torch::Tensor ours;
  {
    torch::NoGradGuard no_grad;
    ours = model->forward(input);
  }
  testing::ScratchDir dir;
  OnnxExportOptions o;
  o.image_size = input.size(2);
  o.probabilities = true;
  o.metadata = {{"convnets.arch", c.arch}};
  write_file_atomic(dir.file("model.onnx"), onnx_model_bytes(graph, o));
  o.fp16 = true;
  o.probabilities = false;
  write_file_atomic(dir.file("model_fp16.onnx"), onnx_model_bytes(graph, o));
  save_safetensors(dir.file("io.safetensors"), {{"input", input},
                                                {"ours", ours},
                                                {"reference", io.at("eval_logits")},
                                                {"reference_fp32", io.at("eval_logits_fp32")},
                                                {"reference_fp16", io.at("eval_logits_fp16")}});
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_onnx.py " + dir.file("model.onnx") + " " +
                          dir.file("model_fp16.onnx") + " " + dir.file("io.safetensors") + " " +
                          std::to_string(graph.num_classes) + (with_openvino(c.arch) ? " --openvino" : "");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

INSTANTIATE_TEST_SUITE_P(OneArchitecturePerBlock, OnnxExport, ::testing::ValuesIn(onnx_cases()), case_name);

// Odd-sized maps, where padding and rounding are not symmetric: at 57 px a ResNet's stem gives 29x29, its max
// pool's last window covers the bottom / right padding (15x15 out), and the stride-2 convolutions meet odd
// maps too; EfficientNet's stride-2 3x3 and 5x5 depthwise convolutions see 29 and 15; TensorFlow's padding
// (V2-B0) pads odd maps on both sides and even ones at the bottom / right only. The folded graph, the fused
// CPU form and the ONNX file (ONNX Runtime and OpenVINO) must all give the eager model's logits there.
class OddSizedMaps : public ::testing::TestWithParam<std::string> {};

TEST_P(OddSizedMaps, EveryFormGivesTheEagerLogits) {
  const std::string arch = GetParam();
  const auto io = testing::load_fixture(arch + "_io.safetensors");
  ConvNetPtr model = torchvision_model(arch, false);
  const torch::Tensor x = io.at("input").narrow(2, 3, 57).narrow(3, 4, 57).contiguous();
  torch::Tensor eager;
  {
    torch::NoGradGuard no_grad;
    eager = model->forward(x);
  }
  const InferenceGraph graph = inference_graph(*model, arch);
  const double bound = std::max({1e-4, testing::fp32_forward_bound(*model),
                                 4 * testing::rel_error(io.at("eval_logits_fp32"), io.at("eval_logits"))});
  EXPECT_LT(testing::rel_error(run_inference_graph(graph, x), eager), bound) << "folded graph";
  if (fast_inference_available()) {
    FastInference fused(graph);
    EXPECT_LT(testing::rel_error(fused.forward(x), eager), bound) << "fused CPU form";
  }
  // nChw16c only where oneDNN has optimised kernels for it (AVX-512); on AVX2 its reference kernels take a
  // minute (tests/cpu/onednn_plan_test.cpp says the same).
  std::vector<ActivationLayout> layouts{ActivationLayout::kNhwc, ActivationLayout::kBlocked8};
  if (onednn_cpu_isa().rfind("avx512", 0) == 0) layouts.push_back(ActivationLayout::kBlocked16);
  for (const auto layout : layouts) {
    OneDnnPlan plan(graph, torch::kFloat, {.layout = layout});
    EXPECT_LT(testing::rel_error(plan.forward(x), eager), bound * testing::winograd_error_ratio())
        << "oneDNN plan, layout " << static_cast<int>(layout);
  }
  ConvNetPtr model64 = torchvision_model(arch, false);
  model64->to(torch::kDouble);
  torch::Tensor reference;
  {
    torch::NoGradGuard no_grad;
    reference = model64->forward(x.to(torch::kDouble));
  }
  testing::ScratchDir dir;
  OnnxExportOptions o;
  o.image_size = x.size(2);
  o.probabilities = true;
  write_file_atomic(dir.file("model.onnx"), onnx_model_bytes(graph, o));
  save_safetensors(dir.file("io.safetensors"),
                   {{"input", x}, {"ours", eager}, {"reference", reference}, {"reference_fp32", eager}});
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_onnx.py " + dir.file("model.onnx") + " - " +
                          dir.file("io.safetensors") + " " + std::to_string(graph.num_classes) +
                          " --openvino";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

INSTANTIATE_TEST_SUITE_P(StemAndStrides, OddSizedMaps,
                         ::testing::Values("resnet18", "efficientnet_b0", "efficientnet_v2_b0"));

}  // namespace
}  // namespace convnets
