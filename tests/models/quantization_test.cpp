// int8 quantization (models/calibration.h, models/quantization.h): the calibrators against a numpy version of
// NVIDIA's histogram calibrator, which values are int8 and how, the file and what a hostile one gets.
#include "models/quantization.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "models/registry.h"
#include "test_support.h"
#include "util/file_io.h"
#include "util/safetensors.h"

namespace convnets {
namespace {

// Activations as a ReLU network makes them: a third exact zeros, a half-normal body and a heavy tail (a few
// outliers far out), so that percentile, entropy and max give three different ranges.
torch::Tensor activation_like_values(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor body = torch::randn({n}).abs();
  body.masked_fill_(torch::rand({n}) < 0.33, 0.0);
  const torch::Tensor tail = torch::empty({n}).exponential_(0.7) * (torch::rand({n}) < 0.01);
  return body + tail;
}

nlohmann::json python_ranges(const torch::Tensor& x) {
  testing::ScratchDir dir;
  save_safetensors(dir.file("x.safetensors"), {{"x", x.contiguous()}});
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/calibration_reference.py " + dir.file("x.safetensors") + " " +
                          dir.file("out.json");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return nlohmann::json::parse(read_file(dir.file("out.json")));
}

TEST(Calibration, RangesAreThoseOfNvidiasHistogramCalibrator) {
  const torch::Tensor x = activation_like_values(400000, 3);
  const nlohmann::json ref = python_ranges(x);
  AbsHistogram h;
  h.add(x);
  const double width = ref["bin_width"].get<double>();
  EXPECT_DOUBLE_EQ(h.max(), ref["max"].get<double>());
  EXPECT_NEAR(h.bin_width(), width, 1e-12 * width);
  // torch.histc bins in float32, numpy in float64: a value on a bin edge may land one bin off, which moves
  // the entropy's flat minimum by a bin or two, the percentile only if it sits on that value.
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kPercentile, 99.99, true),
              ref["percentile_99.99"].get<double>(), 1.01 * width);
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kPercentile, 99.9, true),
              ref["percentile_99.9"].get<double>(), 1.01 * width);
  std::cout << "ranges (bins): percentile 99.99 "
            << calibrated_amax(h, CalibrationMethod::kPercentile, 99.99, true) / width << ", 99.9 "
            << calibrated_amax(h, CalibrationMethod::kPercentile, 99.9, true) / width << ", entropy s8 "
            << calibrated_amax(h, CalibrationMethod::kEntropy, 0, false) / width << " (numpy "
            << ref["entropy_signed"].get<double>() / width << "), u8 "
            << calibrated_amax(h, CalibrationMethod::kEntropy, 0, true) / width << " (numpy "
            << ref["entropy_unsigned"].get<double>() / width << ")\n";
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kEntropy, 0, false), ref["entropy_signed"].get<double>(),
              3.01 * width);
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kEntropy, 0, true), ref["entropy_unsigned"].get<double>(),
              3.01 * width);
  EXPECT_EQ(calibrated_amax(h, CalibrationMethod::kMax, 0, true), h.max());
  // Three different answers, all inside the data's range: the methods are not one.
  const double p = calibrated_amax(h, CalibrationMethod::kPercentile, 99.99, true);
  const double e = calibrated_amax(h, CalibrationMethod::kEntropy, 0, true);
  EXPECT_LT(p, 0.9 * h.max());
  EXPECT_LT(e, 0.9 * h.max());
  EXPECT_GT(std::abs(p - e), 10 * width);
}

// Values at bin centres, where no rounding decides the bin: the percentile is the lower edge of the bin where
// the cumulative count reaches it (NVIDIA's), exactly.
// A heavier tail (Student's t with 3 degrees of freedom), where the entropy search for 128 levels (s8) and
// for 256 (u8) end in different places: each must be its own.
TEST(Calibration, EntropyUsesTheLevelsOfTheValuesType) {
  torch::manual_seed(17);
  const int64_t n = 200000;
  const torch::Tensor chi2 = torch::randn({3, n}).pow(2).sum(0) / 3;
  const torch::Tensor x = torch::randn({n}) / chi2.sqrt();
  const nlohmann::json ref = python_ranges(x);
  AbsHistogram h;
  h.add(x);
  const double width = h.bin_width();
  const double s8 = calibrated_amax(h, CalibrationMethod::kEntropy, 0, false);
  const double u8 = calibrated_amax(h, CalibrationMethod::kEntropy, 0, true);
  std::cout << "t3: entropy s8 " << s8 / width << " bins (numpy "
            << ref["entropy_signed"].get<double>() / width << "), u8 " << u8 / width << " (numpy "
            << ref["entropy_unsigned"].get<double>() / width << ")\n";
  EXPECT_NEAR(s8, ref["entropy_signed"].get<double>(), 3.01 * width);
  EXPECT_NEAR(u8, ref["entropy_unsigned"].get<double>(), 3.01 * width);
  EXPECT_GT(std::abs(s8 - u8), 20 * width) << "the data does not tell 128 levels from 256";
}

TEST(Calibration, ThePercentileIsTheLowerEdgeOfItsBin) {
  const double width = 0.01;
  torch::Tensor x = torch::full({1001}, 10.5 * width, torch::kDouble);
  x[1000] = 2048 * width;  // the max: 2048 bins of `width`
  AbsHistogram h;
  h.add(x);
  // (the histogram counts in float32: edges within its rounding)
  EXPECT_NEAR(h.bin_width(), width, 1e-7 * width);
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kPercentile, 99.9, false), 10 * width, 1e-6 * width);
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kPercentile, 99.95, false), 2047 * width, 1e-3 * width);
}

TEST(Calibration, LaterBatchesWithLargerValuesAddBinsOfTheSameWidth) {
  const torch::Tensor x = activation_like_values(300000, 5);
  const auto order = std::get<1>(x.sort());
  const torch::Tensor small = x.index({order.narrow(0, 0, 150000)});  // the lower half first
  const torch::Tensor large = x.index({order.narrow(0, 150000, 150000)});
  AbsHistogram h;
  h.add(small.neg());  // |x|: the sign does not matter
  const double width = h.bin_width();
  h.add(large);
  EXPECT_EQ(h.bin_width(), width);
  EXPECT_GT(static_cast<int64_t>(h.counts().size()), AbsHistogram::kBins);
  EXPECT_EQ(h.values(), 300000);
  EXPECT_DOUBLE_EQ(std::accumulate(h.counts().begin(), h.counts().end(), 0.0), 300000.0);
  EXPECT_DOUBLE_EQ(h.max(), x.max().item<double>());
  const nlohmann::json ref = python_ranges(x);
  EXPECT_NEAR(calibrated_amax(h, CalibrationMethod::kPercentile, 99.99, true),
              ref["percentile_99.99"].get<double>(), 1.01 * std::max(width, ref["bin_width"].get<double>()));
}

TEST(Calibration, BinsMergeInsteadOfGrowingWithoutBound) {
  AbsHistogram h;
  h.add(torch::full({1000}, 1e-3));
  h.add(torch::tensor({1e3}));
  EXPECT_LE(static_cast<int64_t>(h.counts().size()), AbsHistogram::kMaxBins);
  EXPECT_DOUBLE_EQ(std::accumulate(h.counts().begin(), h.counts().end(), 0.0), 1001.0);
  EXPECT_DOUBLE_EQ(h.max(), 1e3);
  AbsHistogram zeros;
  zeros.add(torch::zeros({10}));
  EXPECT_EQ(calibrated_amax(zeros, CalibrationMethod::kPercentile, 99.99, false), 0.0);
  zeros.add(torch::full({10}, 2.0));  // the zeros seen before the first non-zero batch are counted in bin 0
  EXPECT_DOUBLE_EQ(zeros.counts()[0], 10.0);
  EXPECT_THROW(zeros.add(torch::tensor({std::nan("")})), std::runtime_error);
}

TEST(Quantization, FakeQuantizeRoundsHalfToEvenAndClamps) {
  const torch::Tensor x = torch::tensor({0.5, 1.5, 2.5, -2.5, 126.6, 300.0, -300.0, -0.4}, torch::kDouble);
  EXPECT_TRUE(torch::equal(fake_quantize(x, 1.0, false),
                           torch::tensor({0.0, 2.0, 2.0, -2.0, 127.0, 127.0, -128.0, -0.0}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(fake_quantize(x, 2.0, true),
                           torch::tensor({0.0, 2.0, 2.0, 0.0, 126.0, 300.0, 0.0, 0.0}, torch::kDouble)));
  const torch::Tensor w = torch::tensor({{0.5, -1.27}, {0.0, 0.0}}, torch::kDouble).reshape({2, 2, 1, 1});
  EXPECT_TRUE(torch::allclose(weight_scales(w), torch::tensor({0.01f, 1.0f})));  // a dead channel: 1
}

InferenceGraph graph_of(const std::string& arch, int64_t classes = 10) {
  ConvNetPtr m = create_model(arch, ModelOverrides{.num_classes = classes});
  m->eval();
  return inference_graph(*m, arch, torch::kDouble);
}

TEST(Quantization, WhichValuesAreInt8AndSigned) {
  const InferenceGraph r = graph_of("resnet18");
  const auto int8 = int8_values(r), nonneg = nonnegative_values(r);
  int count = 0;
  for (int v = 0; v < r.num_values; ++v) {
    if (!int8[static_cast<size_t>(v)]) continue;
    ++count;
    EXPECT_EQ(nonneg[static_cast<size_t>(v)], v != 0) << value_name(r, v);  // the input is signed, ReLUs not
  }
  // The input, the max pool, each block's input and inner value (8 + 8), the pooled features.
  EXPECT_EQ(count, 1 + 1 + 8 + 8 - 1 + 1) << "ResNet-18's int8 values";
  EXPECT_FALSE(int8[static_cast<size_t>(r.output)]);

  const InferenceGraph e = graph_of("efficientnet_b0");
  const auto e8 = int8_values(e), enn = nonnegative_values(e);
  for (const InferenceOp& op : e.ops) {
    if (op.kind == InferenceOpKind::kConv &&
        op.groups > 1) {  // depthwise: its input int8, its output read by SE
      EXPECT_TRUE(e8[static_cast<size_t>(op.input)]) << op.name;
      EXPECT_FALSE(e8[static_cast<size_t>(op.output)]) << op.name;
      EXPECT_FALSE(enn[static_cast<size_t>(op.output)]) << op.name << ": SiLU is negative down to -0.278";
    }
    if (op.kind == InferenceOpKind::kMul) {
      EXPECT_FALSE(e8[static_cast<size_t>(op.other)]) << op.name << ": the gate stays float";
      EXPECT_TRUE(e8[static_cast<size_t>(op.output)]) << op.name << ": the projection reads the product";
    }
  }
}

// Every value and weight of the simulation is an integer times its scale, in range, and the logits follow in
// float64 from those integers: checked against an independent integer-valued computation of the stem.
TEST(Quantization, TheSimulationComputesWithIntegersOnTheirGrids) {
  const InferenceGraph g = graph_of("resnet18");
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({2, 3, 32, 32}, torch::kDouble);
  Int8Calibrator calibrator(g);
  calibrator.observe(x);
  Int8Calibration c = calibrator.result("test", CalibrationMethod::kMax, 100);
  for (auto& [name, amax] : c.amax) amax *= 0.8;  // some clipping
  const QuantizedGraph q = quantize_graph(g, c, "test");
  for (size_t i = 0; i < q.graph.ops.size(); ++i) {
    const InferenceOp& op = q.graph.ops[i];
    if (!op.weight.defined()) continue;
    std::vector<int64_t> shape(static_cast<size_t>(op.weight.dim()), 1);
    shape[0] = -1;
    const torch::Tensor k = op.weight / c.weight_scales.at(op.name).to(torch::kDouble).reshape(shape);
    EXPECT_LT((k - k.round()).abs().max().item<double>(), 1e-9) << op.name;
    EXPECT_LE(k.abs().max().item<double>(), 127 + 1e-9) << op.name;
  }
  // The stem by hand: integers in, an integer sum, scaled once.
  const InferenceOp& stem = q.graph.ops.front();
  const double sx = q.value_scale[0];
  const torch::Tensor qx = (x / sx).round().clamp(-128, 127);
  std::vector<int64_t> shape = {-1, 1, 1, 1};
  const torch::Tensor sw = c.weight_scales.at(stem.name).to(torch::kDouble).reshape(shape);
  const torch::Tensor qw = (stem.weight / sw).round();
  const torch::Tensor acc = torch::conv2d(qx, qw, {}, stem.stride, stem.padding);
  EXPECT_LT((acc - acc.round()).abs().max().item<double>(), 1e-6);
  const torch::Tensor by_hand =
      torch::relu(acc * sx * sw.reshape({1, -1, 1, 1}) + stem.bias.reshape({1, -1, 1, 1}));
  InferenceGraph just_stem = q.graph;
  just_stem.ops.resize(1);
  just_stem.output = stem.output;
  QuantizedGraph stem_only = q;
  stem_only.graph = just_stem;
  const torch::Tensor simulated = run_quantized_graph(stem_only, x);
  EXPECT_LT((simulated - by_hand).abs().max().item<double>(), 1e-9 * by_hand.abs().max().item<double>());
  // Clipping matters: with the ranges halved the logits move.
  Int8Calibration clipped = c;
  for (auto& [name, amax] : clipped.amax) amax /= 2;
  const torch::Tensor full = run_quantized_graph(q, x);
  EXPECT_GT(testing::rel_error(run_quantized_graph(quantize_graph(g, clipped, "test"), x), full), 1e-3);
}

Int8Calibration calibrate_max(const InferenceGraph& g, const torch::Tensor& x, const std::string& weights) {
  Int8Calibrator calibrator(g);
  calibrator.observe(x);
  return calibrator.result(weights, CalibrationMethod::kMax, 100);
}

QuantizationFile file_for(const InferenceGraph& g, const torch::Tensor& x) {
  QuantizationFile f;
  f.arch = g.arch;
  f.num_classes = g.num_classes;
  f.method = CalibrationMethod::kMax;
  f.images = x.size(0);
  f.image_size = x.size(2);
  f.sets.push_back(calibrate_max(g, x, "raw"));
  return f;
}

TEST(QuantizationFile, RoundTripsAndFindsTheSetOfTheWeights) {
  const InferenceGraph g = graph_of("resnet18");
  const torch::Tensor x = torch::randn({2, 3, 32, 32}, torch::kDouble);
  const QuantizationFile f = file_for(g, x);
  testing::ScratchDir dir;
  const std::string path = dir.file(kQuantizationFileName);
  save_quantization(path, f);
  const QuantizationFile back = load_quantization(path);
  EXPECT_EQ(back.arch, "resnet18");
  EXPECT_EQ(back.num_classes, 10);
  EXPECT_EQ(back.method, CalibrationMethod::kMax);
  ASSERT_EQ(back.sets.size(), 1u);
  EXPECT_EQ(back.sets[0].amax, f.sets[0].amax);
  for (const auto& [name, s] : f.sets[0].weight_scales)
    EXPECT_TRUE(torch::equal(back.sets[0].weight_scales.at(name), s));
  EXPECT_EQ(&calibration_for(back, g, path), &back.sets[0]);
  // Other weights of the same model, another architecture: named errors.
  const InferenceGraph other = graph_of("resnet18");
  try {
    calibration_for(back, other, path);
    ADD_FAILURE() << "other weights accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("other weights"), std::string::npos) << e.what();
  }
  EXPECT_THROW(calibration_for(back, graph_of("resnet18", 12), path), std::runtime_error);
  // A value missing or one the model does not have.
  Int8Calibration missing = f.sets[0];
  missing.amax.erase("layer2.0.conv1");
  try {
    quantize_graph(g, missing, path);
    ADD_FAILURE() << "a missing range accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("layer2.0.conv1"), std::string::npos) << e.what();
  }
  Int8Calibration extra = f.sets[0];
  extra.amax["features.9"] = 1.0;
  EXPECT_THROW(quantize_graph(g, extra, path), std::runtime_error);
}

TEST(QuantizationFile, HostileFilesGetErrorsNamingTheFileAndKey) {
  const InferenceGraph g = graph_of("resnet18");
  const QuantizationFile f = file_for(g, torch::randn({2, 3, 32, 32}, torch::kDouble));
  testing::ScratchDir dir;
  const std::string good_path = dir.file("good.safetensors");
  save_quantization(good_path, f);
  const SafetensorsFile good = load_safetensors(good_path);
  auto expect_error = [&](NamedTensors tensors, std::map<std::string, std::string> meta,
                          const std::string& needle) {
    const std::string path = dir.file("bad.safetensors");
    write_file_atomic(path, safetensors_bytes(tensors, meta));
    try {
      load_quantization(path);
      ADD_FAILURE() << "accepted; expected an error naming " << needle;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  auto with_value = [&](const std::string& key, const torch::Tensor& t) {
    NamedTensors out = good.tensors;
    for (auto& [k, v] : out) {
      if (k == key) v = t;
    }
    return out;
  };
  const std::string amax_key = "s0/amax/layer1.0.conv1";
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(), 0.0, -1.0})
    expect_error(with_value(amax_key, torch::tensor({bad}, torch::kDouble)), good.metadata, amax_key);
  expect_error(with_value(amax_key, torch::tensor({1.0f})), good.metadata, amax_key);
  const std::string scale_key = "s0/weight_scale/layer1.0.conv1";
  expect_error(with_value(scale_key, torch::zeros({64})), good.metadata, scale_key);
  expect_error(with_value(scale_key, torch::full({64}, std::nanf(""))), good.metadata, scale_key);
  NamedTensors unknown = good.tensors;
  unknown.emplace_back("s7/amax/x", torch::tensor({1.0}, torch::kDouble));
  expect_error(unknown, good.metadata, "s7/amax/x");
  unknown = good.tensors;
  unknown.emplace_back("s0/code/x", torch::tensor({1.0}, torch::kDouble));
  expect_error(unknown, good.metadata, "s0/code/x");
  for (const std::string key : {"format", "arch", "num_classes", "sets", "s0/fingerprint"}) {
    auto meta = good.metadata;
    meta.erase(key);
    expect_error(good.tensors, meta, key);
  }
  auto meta = good.metadata;
  meta["sets"] = "100000";
  expect_error(good.tensors, meta, "sets");
  meta = good.metadata;
  meta["s0/fingerprint"] = "../../etc/passwd";
  expect_error(good.tensors, meta, "fingerprint");
  meta = good.metadata;
  meta["calibration_method"] = "magic";
  expect_error(good.tensors, meta, "magic");
  // Too large to be one: refused before it is read.
  const std::string huge = dir.file("huge.safetensors");
  { std::ofstream(huge).seekp((64 << 20) + 1) << 'x'; }
  EXPECT_THROW(load_quantization(huge), std::runtime_error);
  // Damaged copies: an error or a file whose every value passed the checks, never a crash.
  const std::string bytes = read_file(good_path);
  std::mt19937 rng(11);
  int loaded = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::string path = dir.file("mutant.safetensors");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << testing::mutate(bytes, rng, trial);
    try {
      const QuantizationFile q = load_quantization(path);
      if (++loaded <= 5) quantize_graph(g, q.sets.at(0), path);  // (each rounds 11 M weights)
    } catch (const std::runtime_error&) {
    }
  }
}

}  // namespace
}  // namespace convnets
