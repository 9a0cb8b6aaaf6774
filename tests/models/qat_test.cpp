// Quantization-aware training's forward (models/qat.h): in eval mode the int8 simulation of the folded graph
// (run_quantized_graph), exactly, in every family; the straight-through gradients; training mode's batch
// statistics, dropout and stochastic depth.
#include "models/qat.h"

#include <gtest/gtest.h>

#include "cpu/randomised_model.h"
#include "models/quantization.h"
#include "models/registry.h"
#include "test_support.h"

namespace convnets {
namespace {

// Ranges from a max calibration of `x`, cut to 0.8 so that some values clamp.
std::map<std::string, double> ranges_for(const ConvNetImpl& model, const std::string& arch,
                                         const torch::Tensor& x) {
  Int8Calibrator calibrator(inference_graph(model, arch, torch::kDouble));
  calibrator.observe(x);
  std::map<std::string, double> amax = calibrator.result("raw", CalibrationMethod::kMax, 100).amax;
  for (auto& [name, a] : amax) a *= 0.8;
  return amax;
}

// The weights of every convolution and linear layer of `model` replaced by QAT's rounding of them.
void round_weights_as_qat(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& m : model.modules(false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>())
      conv->weight.copy_(fake_quantize_weights_ste(conv->weight));
    if (auto* fc = m->as<torch::nn::LinearImpl>()) fc->weight.copy_(fake_quantize_weights_ste(fc->weight));
  }
}

class QatFamilies : public ::testing::TestWithParam<std::string> {};

// Eval mode: BatchNorm with its running statistics after the rounded convolution equals the folded
// convolution on the folded weights' grid (rounding per output channel commutes with BatchNorm's factor), so
// the QAT forward is the simulation of the int8 form, in float64 to ~1e-15, with the same values rounded at
// the same scales and residuals read rounded. Planted: the float forward is far from it.
TEST_P(QatFamilies, EvalForwardIsTheInt8SimulationOfTheFoldedGraph) {
  const std::string arch = GetParam();
  ConvNetPtr model = testing::randomised_model(arch, 5);
  model->to(torch::kDouble);
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({2, 3, 40, 40}, torch::kDouble);
  const auto amax = ranges_for(*model, arch, x);
  const InferenceGraph folded = inference_graph(*model, arch, torch::kDouble);

  model->set_qat(std::make_shared<QatForward>(*model, arch, amax));
  torch::Tensor qat;
  {
    torch::NoGradGuard no_grad;
    qat = model->forward(x);
  }
  model->set_qat(nullptr);
  const torch::Tensor float_logits = model->forward(x).detach();

  // The simulation of the folded graph whose weights are QAT's rounded ones...
  round_weights_as_qat(*model);
  Int8Calibration c;
  c.amax = amax;
  QuantizedGraph q = quantize_graph(
      folded,
      [&] {
        Int8Calibration full = c;
        for (const auto& op : folded.ops)
          if (op.weight.defined()) full.weight_scales[op.name] = weight_scales(op.weight);
        full.fingerprint = graph_fingerprint(folded);
        full.weights = "raw";
        return full;
      }(),
      "test");
  // ...is on the grid of the quantized graph of the original weights: the same integers per channel, the
  // scales equal up to float32's rounding of them (quantize_graph keeps float32 scales), which moves a weight
  // within ~1e-7 of a rounding boundary (~1e-6 of them) one step.
  const InferenceGraph rounded = inference_graph(*model, arch, torch::kDouble);
  int64_t weights = 0, one_step = 0;
  for (size_t i = 0; i < rounded.ops.size(); ++i) {
    const InferenceOp& op = rounded.ops[i];
    if (!op.weight.defined()) continue;
    std::vector<int64_t> shape(static_cast<size_t>(op.weight.dim()), 1);
    shape[0] = -1;
    const torch::Tensor steps =
        (op.weight - q.graph.ops[i].weight).abs() / q.weight_scale[i].to(torch::kDouble).reshape(shape);
    EXPECT_LT(steps.max().item<double>(), 1 + 1e-5) << op.name;
    weights += steps.numel();
    one_step += (steps > 1e-5).sum().item<int64_t>();
  }
  EXPECT_LE(one_step, weights / 100000) << one_step << " of " << weights << " weights a step apart";
  q.graph = rounded;
  const torch::Tensor simulated = run_quantized_graph(q, x);
  const double error = testing::rel_error(qat, simulated);
  const double float_error = testing::rel_error(float_logits, simulated);
  std::cout << arch << ": QAT eval vs the int8 simulation " << error << ", float vs it " << float_error
            << "\n";
  EXPECT_LT(error, 1e-12);
  EXPECT_GT(float_error, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Qat, QatFamilies,
                         ::testing::Values("resnet18", "resnet50", "efficientnet_b0", "efficientnet_v2_b0"));

TEST(Qat, GradientsPassStraightThroughInsideTheRange) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    const torch::Tensor x =
        torch::tensor({-2.0, -1.27, -0.004, 0.0, 0.5, 1.2, 1.3, 3.0}, dtype).requires_grad_(true);
    const torch::Tensor y = fake_quantize_ste(x, 0.01, /*is_unsigned=*/false);
    y.backward(torch::arange(1, 9, dtype));
    // Rounded to [-1.28, 1.27]; the gradient of the clamped ones (-2, 1.3, 3) is 0.
    EXPECT_TRUE(torch::allclose(y.detach().to(torch::kDouble),
                                torch::tensor({-1.28, -1.27, 0.0, 0.0, 0.5, 1.2, 1.27, 1.27}, torch::kDouble),
                                1e-6, 1e-7))
        << y;
    EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({0, 2, 3, 4, 5, 6, 0, 0}).to(dtype))) << x.grad();
    const torch::Tensor u = torch::tensor({-0.3, 0.1, 2.6}, dtype).requires_grad_(true);
    fake_quantize_ste(u, 0.01, /*is_unsigned=*/true).sum().backward();
    EXPECT_TRUE(torch::equal(u.grad(), torch::tensor({0, 1, 0}).to(dtype))) << u.grad();

    const torch::Tensor w =
        torch::tensor({{0.5, -0.25, 0.1}, {0.0, 0.0, 0.0}, {-3.0, 1.0, 0.02}}, dtype).requires_grad_(true);
    const torch::Tensor wq = fake_quantize_weights_ste(w);
    // Scales 0.5 / 127, 1 (zeros), 3 / 127; -63.5 rounds to even.
    const torch::Tensor expected =
        torch::tensor({{127.0, -64.0, 25.0}, {0.0, 0.0, 0.0}, {-127.0, 42.0, 1.0}}, torch::kDouble) *
        torch::tensor({0.5 / 127, 1.0, 3.0 / 127}, torch::kDouble).reshape({3, 1});
    EXPECT_TRUE(torch::allclose(wq.detach().to(torch::kDouble), expected, 1e-6, 1e-7)) << wq;
    (wq * 2).sum().backward();
    EXPECT_TRUE(torch::equal(w.grad(), torch::full({3, 3}, 2.0, dtype)));
  }
}

// Training mode: BatchNorm normalises with the batch and updates its running statistics, every parameter
// gets a gradient, and EfficientNet's dropout and stochastic depth draw from the seed (same seed, same
// logits; another seed, others).
TEST(Qat, TrainingModeUsesBatchStatisticsDropoutAndStochasticDepth) {
  ConvNetPtr model = testing::randomised_model("efficientnet_b0", 7);
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({4, 3, 40, 40});
  model->set_qat(std::make_shared<QatForward>(*model, "efficientnet_b0",
                                              ranges_for(*model, "efficientnet_b0", x.to(torch::kDouble))));
  model->train();
  const torch::Tensor mean_before = model->named_buffers()["features.0.1.running_mean"].clone();
  torch::manual_seed(10);
  const torch::Tensor a = model->forward(x);
  a.logsumexp(1).sum().backward();
  EXPECT_FALSE(torch::equal(mean_before, model->named_buffers()["features.0.1.running_mean"]));
  int64_t without = 0;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().grad().defined() || p.value().grad().abs().sum().item<double>() == 0)
      ++without;
    else
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  EXPECT_EQ(without, 0);
  torch::NoGradGuard no_grad;
  torch::manual_seed(10);
  const torch::Tensor same = model->forward(x);
  torch::manual_seed(11);
  const torch::Tensor other = model->forward(x);
  EXPECT_TRUE(torch::equal(a.detach(), same));
  EXPECT_GT(testing::rel_error(other, same), 1e-3);
  model->eval();
  EXPECT_GT(testing::rel_error(model->forward(x), same), 1e-3);
}

TEST(Qat, ARangeMissingForAnInt8ValueIsAnError) {
  ConvNetPtr model = create_model("resnet18");
  std::map<std::string, double> amax =
      ranges_for(*model, "resnet18", torch::randn({1, 3, 32, 32}, torch::kDouble));
  amax.erase("layer2.0.conv1");
  try {
    QatForward qat(*model, "resnet18", amax);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'layer2.0.conv1'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace convnets
