// The oneDNN plan's own mechanics on small models with randomised BatchNorm statistics (no fixtures: the
// calibrated comparison of every architecture is in tests/infer/onnx_export_test.cpp): each activation
// layout gives the folded graph's float64 logits, buffers are shared, one OpenMP runtime serves LibTorch
// and oneDNN, bad input is refused with a message.
#include "cpu/onednn_plan.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <set>

#include "cpu/randomised_model.h"
#include "cpu/winograd_error_ratio.h"
#include "data/loader.h"
#include "models/inference_graph.h"
#include "models/registry.h"
#include "run/config.h"
#include "run/run_device.h"
#include "test_support.h"

namespace convnets {
namespace {

ConvNetPtr randomised_model(const std::string& arch) {
  return testing::randomised_model(arch, 7);
}

class OneDnnPlanLayouts : public ::testing::TestWithParam<std::string> {};

TEST_P(OneDnnPlanLayouts, EveryLayoutGivesTheFoldedGraphsLogits) {
  const std::string arch = GetParam();
  ConvNetPtr model = randomised_model(arch);
  // 45 px: odd maps at every stride (max pool and "same" padding at their bottom / right edges), 1x1 at the
  // last stage of the deeper models.
  const torch::Tensor x = torch::randn({3, 3, 45, 45}, torch::TensorOptions().dtype(torch::kFloat));
  const InferenceGraph graph = inference_graph(*model, arch);
  const torch::Tensor reference =
      run_inference_graph(inference_graph(*model, arch, torch::kDouble), x.to(torch::kDouble));
  // Derived: the ATen float32 graph's own error, 4x, or 1e-5; times the Winograd factor where the plan runs
  // Winograd convolutions (ResNet-18's 64-channel stage at 12x12 x 3 images: 27 tiles).
  const double bound = std::max(1e-5, 4 * testing::rel_error(run_inference_graph(graph, x), reference)) *
                       testing::winograd_error_ratio();
  // The blocked layouts only where oneDNN has optimised kernels for them (elsewhere its reference kernels
  // take a minute here): nChw16c needs AVX-512, and ResNeXt's grouped convolutions (4 channels per group)
  // have none in either blocked layout.
  std::vector<ActivationLayout> layouts{ActivationLayout::kAuto, ActivationLayout::kNhwc};
  if (arch.rfind("resnext", 0) != 0) {
    layouts.push_back(ActivationLayout::kBlocked8);
    if (onednn_cpu_isa().rfind("avx512", 0) == 0) layouts.push_back(ActivationLayout::kBlocked16);
  }
  for (const auto layout : layouts) {
    OneDnnPlan plan(graph, torch::kFloat, {.layout = layout});
    const torch::Tensor logits = plan.forward(x);
    EXPECT_LT(testing::rel_error(logits, reference), bound) << "layout " << static_cast<int>(layout);
    // Batch 1 through a second plan of the same object, then the first again: no state leaks between plans.
    EXPECT_LT(testing::rel_error(plan.forward(x.narrow(0, 1, 1)), reference.narrow(0, 1, 1)), bound);
    EXPECT_TRUE(torch::equal(plan.forward(x), logits)) << "the same batch twice";
  }
  // --cpu_autotune: each convolution timed through oneDNN's implementations for this CPU's instruction set;
  // whichever wins, the logits are within the same bound and every step runs a kernel of that ISA.
  OneDnnPlan tuned(graph, torch::kFloat, {.autotune = true});
  EXPECT_LT(testing::rel_error(tuned.forward(x), reference), bound) << "autotuned";
  const auto chosen = tuned.describe({3, 3, 45, 45});
  const auto first_choice = OneDnnPlan(graph).describe({3, 3, 45, 45});
  const bool winograd = std::any_of(first_choice.begin(), first_choice.end(), [](const std::string& line) {
    return line.find(" winograd_conv: F(4x4,3x3)") != std::string::npos;
  });
  EXPECT_EQ(winograd, arch == "resnet18") << "3x3 stride-1 convolutions with >= 64 channels and >= 16 tiles";
  if (arch == "resnet18") {  // and without it, every convolution direct: the same logits within the bound
    OneDnnPlan direct(graph, torch::kFloat, {.winograd = false});
    for (const auto& line : direct.describe({3, 3, 45, 45}))
      EXPECT_EQ(line.find("winograd"), std::string::npos) << line;
    EXPECT_LT(testing::rel_error(direct.forward(x), reference), bound);
  }
  // Every convolution on a direct kernel: ResNeXt's 4-channel groups, which oneDNN 3.2 runs gemm-based on
  // AVX2, are merged into 8-channel ones (checked against the float64 logits above, in every layout).
  // On AVX2, 1x1 and depthwise convolutions on oneDNN's jit kernels, not its brgemm ones (its first choice
  // there, measured slower: cpu/onednn_plan.cpp), but where the jit kernel has none: a stride-2 1x1 on an
  // odd map (ResNet's last downsample at 45 px, 3x3 -> 2x2).
  bool jit_1x1 = false;
  for (const auto& line : first_choice)
    if (line.find(" conv:") != std::string::npos) {
      EXPECT_EQ(line.find("gemm"), std::string::npos) << line;
      if (line.find(".downsample.") == std::string::npos) {
        EXPECT_EQ(line.find("brgconv_1x1:avx2"), std::string::npos) << line;
      }
      EXPECT_EQ(line.find("brdgmm_dw:avx2"), std::string::npos) << line;
      jit_1x1 = jit_1x1 || line.find(" conv: jit_1x1:avx2") != std::string::npos;
    }
  if (onednn_cpu_isa() == "avx2") {
    EXPECT_TRUE(jit_1x1) << "every family has 1x1 convolutions";
  }
  ASSERT_EQ(chosen.size(), first_choice.size());
  for (size_t i = 0; i < chosen.size(); ++i) {
    const std::string isa = first_choice[i].substr(first_choice[i].rfind(':'));
    EXPECT_EQ(chosen[i].substr(chosen[i].rfind(':')), isa) << chosen[i] << " in place of " << first_choice[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Families, OneDnnPlanLayouts,
                         ::testing::Values("resnet18", "resnext50_32x4d", "efficientnet_b0",
                                           "efficientnet_v2_b0"));

// Merged groups (block-diagonal weights) on whatever instruction set runs the suite: oneDNN merges ResNeXt's
// 4-channel groups only where it has no direct kernel for them (AVX2), so the merge is forced here; the
// logits stay within the float32 bound (derived as above) of the float64 graph.
TEST(OneDnnPlan, MergedGroupsGiveTheFloat64LogitsOnAnyInstructionSet) {
  ConvNetPtr model = randomised_model("resnext50_32x4d");
  const InferenceGraph graph = inference_graph(*model, "resnext50_32x4d");
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({2, 3, 45, 45});
  const torch::Tensor reference =
      run_inference_graph(inference_graph(*model, "resnext50_32x4d", torch::kDouble), x.to(torch::kDouble));
  const double bound = std::max(1e-5, 4 * testing::rel_error(run_inference_graph(graph, x), reference)) *
                       testing::winograd_error_ratio();
  OneDnnPlan merged(graph, torch::kFloat, {.group_merge = GroupMerge::kAlways});
  const torch::Tensor logits = merged.forward(x);
  EXPECT_LT(testing::rel_error(logits, reference), bound);
  // Every grouped convolution but the depthwise ones (none here) merged: one per bottleneck, 16 of them.
  const auto lines = merged.describe({2, 3, 45, 45});
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return l.find(" (groups 32 merged into 16)") != std::string::npos;
                          }),
            16);
}

// Winograd where its tiles overhang the map: ResNet-18 at 56 px, batch 4, runs layer1 on 14x14 maps (4x4
// tiles of 4 outputs, the last row and column half outside) and layer2 on 7x7 ones (2x2 tiles, 3 of 4 rows
// used in the last), both Winograd (>= 16 tiles) where a 3x3 stride-1 convolution has no residual (each
// block's conv1 but layer2.0's, which has stride 2); the logits within the derived bound of the float64
// graph.
TEST(OneDnnPlan, WinogradWithPartialTilesGivesTheFloat64Logits) {
  ConvNetPtr model = randomised_model("resnet18");
  const InferenceGraph graph = inference_graph(*model, "resnet18");
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({4, 3, 56, 56});
  const torch::Tensor reference =
      run_inference_graph(inference_graph(*model, "resnet18", torch::kDouble), x.to(torch::kDouble));
  const double bound = std::max(1e-5, 4 * testing::rel_error(run_inference_graph(graph, x), reference)) *
                       testing::winograd_error_ratio();
  OneDnnPlan plan(graph);
  int64_t layer1 = 0, layer2 = 0;
  for (const auto& line : plan.describe({4, 3, 56, 56})) {
    if (line.find(" winograd_conv: ") == std::string::npos) continue;
    layer1 += line.rfind("layer1.", 0) == 0;
    layer2 += line.rfind("layer2.", 0) == 0;
  }
  EXPECT_EQ(layer1, 2) << "layer1.0.conv1, layer1.1.conv1 on 14x14 maps";
  EXPECT_EQ(layer2, 1) << "layer2.1.conv1 on 7x7 maps";
  EXPECT_LT(testing::rel_error(plan.forward(x), reference), bound);
}

// Activations share buffers by liveness (and residual adds and gates run in place): ResNet-50's 70-odd
// values fit in a few buffers.
TEST(OneDnnPlan, SharesBuffersBetweenValues) {
  ConvNetPtr model = randomised_model("resnet50");
  OneDnnPlan plan(inference_graph(*model, "resnet50"));
  const auto use = plan.memory_use({2, 3, 64, 64});
  EXPECT_GT(use.unshared, 0);
  EXPECT_LT(use.buffers, use.unshared / 5) << use.buffers << " of " << use.unshared << " bytes";
}

// At batch 1 a squeeze-excitation gate scales the weights of the 1x1 convolution that reads its product
// (where the map has at least 16x as many positions as that convolution has output channels) instead of
// multiplying the map: EfficientNet-B0 at 96 px folds the gates of its 48x48 and 24x24 stages, not those of
// the smaller maps, and never at batch 2; the logits stay within the float32 bound (derived as above) of the
// float64 graph.
TEST(OneDnnPlan, FoldsBatchOneGatesIntoTheProjectionWeights) {
  ConvNetPtr model = randomised_model("efficientnet_b0");
  const InferenceGraph graph = inference_graph(*model, "efficientnet_b0");
  const torch::Tensor x = torch::randn({2, 3, 96, 96});
  const torch::Tensor reference =
      run_inference_graph(inference_graph(*model, "efficientnet_b0", torch::kDouble), x.to(torch::kDouble));
  const double bound = std::max(1e-5, 4 * testing::rel_error(run_inference_graph(graph, x), reference));
  OneDnnPlan plan(graph);
  auto count = [](const std::vector<std::string>& lines, const std::string& what) {
    return std::count_if(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(what) != std::string::npos; });
  };
  const auto one = plan.describe({1, 3, 96, 96}), two = plan.describe({2, 3, 96, 96});
  // B0's 16 blocks at 96 px: 1 on 48x48 (2304 >= 16 x 16 output channels), 2 on 24x24 (576 >= 16 x 24),
  // 2 on 12x12 (144 < 16 x 40), the rest on 6x6 and 3x3 maps with 80 or more channels.
  EXPECT_EQ(count(one, "scaled by the gate"), 3);
  EXPECT_EQ(count(one, " mul:"), 13);
  EXPECT_EQ(count(two, "scaled by the gate"), 0);
  EXPECT_EQ(count(two, " mul:"), 16);
  for (const auto& line : one) EXPECT_EQ(line.find("ref:"), std::string::npos) << line;
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_LT(testing::rel_error(plan.forward(x.narrow(0, i, 1)), reference.narrow(0, i, 1)), bound) << i;
  }
  EXPECT_LT(testing::rel_error(plan.forward(x), reference), bound);
}

// One OpenMP runtime in the process (oneDNN's wheel and LibTorch's share libgomp.so.1), so the thread count
// LibTorch is given governs oneDNN too.
TEST(OneDnnPlan, OneOpenMpRuntimeForBothLibraries) {
  ConvNetPtr model = randomised_model("resnet18");
  OneDnnPlan plan(inference_graph(*model, "resnet18"));
  plan.forward(torch::randn({1, 3, 32, 32}));
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> gomp, dnnl;
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("libgomp") != std::string::npos) gomp.insert(path);
    if (path.find("libdnnl") != std::string::npos) dnnl.insert(path);
  }
  EXPECT_EQ(gomp.size(), 1u) << "OpenMP runtimes loaded: " << gomp.size();
  EXPECT_EQ(dnnl.size(), 1u) << "our oneDNN is loaded";
  using GetInt = int (*)();
  const auto omp_max_threads = reinterpret_cast<GetInt>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  ASSERT_NE(omp_max_threads, nullptr);
  // --cpu_threads (setup_device) sets the pool both libraries run on.
  const int before = torch::get_num_threads();
  PrecisionConfig precision;
  precision.device = DeviceKind::kCpu;
  CpuConfig cpu;
  cpu.cpu_threads = 3;
  setup_device(precision, cpu, 0);
  EXPECT_EQ(torch::get_num_threads(), 3);
  EXPECT_EQ(omp_max_threads(), 3);
  cpu.cpu_threads = 1;
  setup_device(precision, cpu, 0);
  EXPECT_EQ(omp_max_threads(), 1);
  torch::set_num_threads(before);
}

// forward_images normalises the loaders' uint8 NHWC batches inside the plan: x * scale, rounded, + shift.
// normalize_images' addcmul fuses the two (one rounding), so a normalised pixel may differ in its last bit
// (2.4e-7 at most for ImageNet's constants): the logits agree within the plan's own float32 bound (derived as
// in the layout test above). In every layout (the blocked ones take normalize_images itself), for a second
// mean / std on the same plan, batch 1, and for a channels_last float input (bit for bit).
TEST(OneDnnPlan, NormalisesImagesAsTheLoaderDoes) {
  ConvNetPtr model = randomised_model("resnet18");
  const InferenceGraph graph = inference_graph(*model, "resnet18");
  torch::manual_seed(3);
  // 45 px wide: a row of 135 values, not a multiple of any vector length.
  const torch::Tensor u8 = torch::randint(0, 256, {2, 38, 45, 3}, torch::kUInt8);
  const std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  const std::array<double, 3> half{0.5, 0.5, 0.5}, swapped{0.406, 0.456, 0.485};
  const torch::Tensor x = normalize_images(u8, mean, std).contiguous();
  const torch::Tensor reference =
      run_inference_graph(inference_graph(*model, "resnet18", torch::kDouble), x.to(torch::kDouble));
  const double bound = std::max(1e-5, 4 * testing::rel_error(run_inference_graph(graph, x), reference));
  for (const auto layout : {ActivationLayout::kAuto, ActivationLayout::kBlocked8}) {
    OneDnnPlan plan(graph, torch::kFloat, {.layout = layout});
    const torch::Tensor expected = plan.forward(normalize_images(u8, mean, std).contiguous());
    EXPECT_LT(testing::rel_error(plan.forward_images(u8, mean, std), expected), bound)
        << static_cast<int>(layout);
    EXPECT_TRUE(torch::equal(plan.forward(normalize_images(u8, mean, std)), expected)) << "channels_last";
    // What a swapped channel order would give: far outside the bound, so the comparison can fail.
    EXPECT_GT(testing::rel_error(plan.forward_images(u8, swapped, std), expected), 100 * bound);
    const torch::Tensor other = plan.forward(normalize_images(u8, half, half).contiguous());
    EXPECT_LT(testing::rel_error(plan.forward_images(u8, half, half), other), bound) << "a second mean / std";
    const torch::Tensor one = u8.narrow(0, 1, 1);
    EXPECT_LT(testing::rel_error(plan.forward_images(one, mean, std),
                                 plan.forward(normalize_images(one, mean, std).contiguous())),
              bound)
        << "batch 1";
  }
  EXPECT_LT(bound, 1e-4);
  OneDnnPlan plan(graph);
  EXPECT_THROW(plan.forward_images(u8.to(torch::kFloat), mean, std), std::invalid_argument);
  EXPECT_THROW(plan.forward_images(u8.narrow(3, 0, 2), mean, std), std::invalid_argument);
}

TEST(OneDnnPlan, RefusesWhatItCannotRun) {
  ConvNetPtr model = randomised_model("resnet18");
  OneDnnPlan plan(inference_graph(*model, "resnet18"));
  try {
    plan.forward(torch::randn({1, 4, 32, 32}));
    FAIL() << "a 4-channel input was run";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("4 channels, the model takes 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plan.forward(torch::randn({3, 32, 32})), std::invalid_argument);
  if (!onednn_plan_bf16_supported()) {
    try {
      OneDnnPlan bf16(inference_graph(*model, "resnet18"), torch::kBFloat16);
      FAIL() << "bfloat16 accepted without native support";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no native bfloat16"), std::string::npos) << e.what();
    }
  }
}

// bfloat16 where the CPU has it: within bfloat16's error of the float32 plan, same top-1 on most of a batch.
// Elsewhere the plan refuses it (RefusesWhatItCannotRun checks the message).
TEST(OneDnnPlan, Bfloat16WhereNative) {
  ConvNetPtr model = randomised_model("resnet18");
  const InferenceGraph graph = inference_graph(*model, "resnet18");
  if (!onednn_plan_bf16_supported()) {
    EXPECT_THROW(OneDnnPlan(graph, torch::kBFloat16), std::runtime_error) << onednn_cpu_isa();
    return;
  }
  const torch::Tensor x = torch::randn({4, 3, 64, 64});
  OneDnnPlan f32(graph), bf16(graph, torch::kBFloat16);
  const torch::Tensor reference = f32.forward(x);
  // bfloat16 keeps 8 bits: a relative rounding of 2^-9 per value, through ~20 layers in sequence.
  EXPECT_LT(testing::rel_error(bf16.forward(x), reference), 20 * std::pow(2.0, -9));
  EXPECT_EQ(bf16.forward(x).scalar_type(), torch::kFloat);
}

}  // namespace
}  // namespace convnets
