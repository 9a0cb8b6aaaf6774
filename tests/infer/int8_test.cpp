// The int8 arithmetic on calibrated reference models (tests/python/make_model_fixtures.py: torchvision's
// layouts, BatchNorm statistics measured on photos) and real photo crops: quantized as `convnets quantize`
// does, simulated in float64, against the float64 inference form.
#include <gtest/gtest.h>
#include <torch/types.h>

#include "models/quantization.h"
#include "models/registry.h"
#include "test_support.h"

namespace convnets {
namespace {

Int8Calibration calibrate(const InferenceGraph& g, const torch::Tensor& x, CalibrationMethod method) {
  Int8Calibrator calibrator(g);
  calibrator.observe(x);
  return calibrator.result("fixture", method, 99.99);
}

struct Int8Case {
  std::string arch;
  double bound;  // relative logit error of int8 against float
};
void PrintTo(const Int8Case& c, std::ostream* os) {
  *os << c.arch;
}

class Int8OnPhotos : public ::testing::TestWithParam<Int8Case> {};

// 8 photo crops at 64 px calibrate (max, as the few images make percentile and max the same) and are then
// evaluated: int8's error is its rounding (127 levels per value, per-channel weights) through the depth of
// the network. Bound: twice the error measured (ResNet-18: 6.6%); a scale off by 2x (255 levels for the
// signed input) gives 52%. (These random networks amplify any rounding with depth, see
// make_model_fixtures.py: ResNeXt-50 ends 37% off, EfficientNet-B0 95%; int8 accuracy on trained models is
// checked end to end in tests/app/check_export.py.)
TEST_P(Int8OnPhotos, TheSimulatedInt8LogitsStayNearTheFloatOnes) {
  const Int8Case c = GetParam();
  const auto io = testing::load_fixture(c.arch + "_io.safetensors");
  const torch::Tensor x = io.at("input").to(torch::kDouble);
  ConvNetPtr model = testing::reference_model(c.arch, testing::fixture_weights(c.arch));
  const InferenceGraph g = inference_graph(*model, c.arch, torch::kDouble);
  const torch::Tensor reference = run_inference_graph(g, x);
  ASSERT_GE(testing::distinct_top1(reference), 3) << "the photos must not all give one class";
  const QuantizedGraph q = quantize_graph(g, calibrate(g, x, CalibrationMethod::kMax), "fixture");
  const torch::Tensor int8 = run_quantized_graph(q, x);
  const double error = testing::rel_error(int8, reference);
  const int64_t agree = int8.argmax(1).eq(reference.argmax(1)).sum().item<int64_t>();
  std::cout << c.arch << ": int8 relative logit error " << error << ", top-1 agrees on " << agree
            << " of 8\n";
  EXPECT_LT(error, c.bound);
  EXPECT_GT(error, 1e-4) << "no rounding at all: the int8 grid is not applied";
}

INSTANTIATE_TEST_SUITE_P(Families, Int8OnPhotos, ::testing::Values(Int8Case{"resnet18", 0.13}),
                         [](const auto& info) { return info.param.arch; });

}  // namespace
}  // namespace convnets
