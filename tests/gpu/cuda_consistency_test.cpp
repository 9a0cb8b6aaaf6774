// CPU vs CUDA (ctest label "gpu"): the same weights and inputs through the CPU and the CUDA paths of what a
// training step uses. Without a CUDA device every test skips with a message, unless CONVNETS_GPU_DRY_RUN=1:
// then the CPU stands in for the GPU, which exercises this file (not CUDA) on any machine.
//
// Errors are ||x - ref|| / ||ref|| against a float64 CPU reference: logits, loss, all gradients together,
// the worst single gradient tensor, BatchNorm running statistics. The bounds are derived, not tuned
// (docs/gpu.md has the numbers behind them):
// - The device is judged against the CPU's own error at the same precision on the same inputs: both round
//   operands and partial sums the same way, so only the order of summation and cuDNN's algorithm choice
//   (Winograd, FFT, implicit GEMM) differ. fp32 (TF32 off): within 10x the CPU's fp32 error plus 8 float32
//   ulps. bf16 autocast: within 4x the CPU's bf16 error; fp16 (CUDA only): 2^-3 of that bound, the ratio of
//   the two formats' unit roundoff (2^-11 vs 2^-8).
// - A bound is only as sharp as the problem is well conditioned. At initialisation ResNet-50 in train mode is
//   not: its fp32 gradients are 1.6% from float64 (torchvision's too), bf16 ones over 100%. So train mode
//   (batch statistics, cuDNN's BatchNorm training kernels) is checked in fp32 and for the BN statistics;
//   the mixed-precision gradients are checked in eval mode, where fp32 lands near 1e-5 and bf16 near 3e-2,
//   and the CPU's own bf16 error must be under 0.1 for the check to count (garbage would be near 1).
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <ostream>

#include "data/device_batches.h"
#include "data/imagenet_record.h"
#include "data/jpeg_codec.h"
#include "data/loader.h"
#include "data/mixing.h"
#include "data/tfrecord.h"
#include "data/tfrecord_dataset.h"
#include "infer/damaged_shards.h"
#include "infer/modes.h"
#include "models/registry.h"
#include "run/autocast.h"
#include "run/model_setup.h"
#include "test_support.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/loss.h"
#include "train/optimizers.h"
#include "train/param_groups.h"
#include "train/train_step.h"
#include "util/file_io.h"
#include "util/state_dict.h"

namespace convnets {
namespace {

constexpr double kBf16Unit = 1.0 / 256;   // 2^-8
constexpr double kFp16Unit = 1.0 / 2048;  // 2^-11
constexpr double kFp32Floor = 8 * 5.96e-8;

bool dry_run() {
  const char* v = std::getenv("CONVNETS_GPU_DRY_RUN");
  return v && std::string(v) == "1";
}

// The device under test: CUDA, or the CPU in a dry run; nullopt: skip.
std::optional<torch::Device> gpu() {
  if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
  if (dry_run()) {
    // One thread: CTest runs tests side by side, and two processes spinning two OpenMP threads each on a
    // 2-core machine run 7x slower than one thread each.
    torch::set_num_threads(1);
    return torch::Device(torch::kCPU);
  }
  return std::nullopt;
}

#define REQUIRE_GPU()                                                                                     \
  const auto maybe_gpu = gpu();                                                                           \
  if (!maybe_gpu) GTEST_SKIP() << "no CUDA device (CONVNETS_GPU_DRY_RUN=1 runs this on the CPU instead)"; \
  const torch::Device device = *maybe_gpu

// TF32 off for the fp32 comparisons; restored afterwards.
struct NoTf32 {
  NoTf32() : cublas(at::globalContext().allowTF32CuBLAS()), cudnn(at::globalContext().allowTF32CuDNN()) {
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuBLAS(cublas);
    at::globalContext().setAllowTF32CuDNN(cudnn);
  }
  bool cublas, cudnn;
};

ModelOverrides deterministic(const std::string& arch) {
  ModelOverrides o;
  o.num_classes = 1000;
  if (find_model(arch).dropout > 0) {  // EfficientNets: no random masks (CPU and CUDA draw differently)
    o.dropout = 0;
    o.stochastic_depth = 0;
  }
  return o;
}

// One train-mode forward + backward, everything returned as float64 on the CPU.
struct Pass {
  torch::Tensor logits, loss;
  std::vector<std::pair<std::string, torch::Tensor>> grads, buffers;
};

Pass run_pass(const std::string& arch, bool train, const NamedTensors& weights, const torch::Tensor& images,
              const torch::Tensor& targets, torch::Device device, torch::ScalarType dtype,
              std::optional<torch::ScalarType> autocast, double loss_scale = 1.0) {
  ConvNetPtr model = create_model(arch, deterministic(arch));
  load_state_dict(*model, weights);
  model->to(device, dtype);
  torch::Tensor x = images.to(device, dtype);
  if (device.is_cuda()) {  // the product's layout on the GPU
    to_channels_last(*model);
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  model->train(train);
  torch::Tensor logits;
  {
    AutocastGuard guard(device.type(), autocast);
    logits = model->forward(x);
  }
  // The product's loss (computed in fp32); the float64 reference keeps float64 throughout.
  const torch::Tensor loss = dtype == torch::kDouble
                                 ? -(targets.to(device, dtype) * torch::log_softmax(logits, 1)).sum(1).mean()
                                 : soft_cross_entropy(logits, targets.to(device, dtype));
  (loss * loss_scale).backward();
  Pass p;
  p.logits = logits.detach().to(torch::kCPU, torch::kDouble);
  p.loss = loss.detach().to(torch::kCPU, torch::kDouble);
  for (const auto& item : model->named_parameters())
    p.grads.emplace_back(item.key(), item.value().grad().to(torch::kCPU, torch::kDouble) / loss_scale);
  for (const auto& item : model->named_buffers()) {
    if (item.value().is_floating_point())
      p.buffers.emplace_back(item.key(), item.value().to(torch::kCPU, torch::kDouble));
  }
  return p;
}

struct Errors {
  double logits, loss, grads, worst_grad, buffers;
  std::string worst_grad_name;
};

torch::Tensor flat(const std::vector<std::pair<std::string, torch::Tensor>>& v) {
  std::vector<torch::Tensor> parts;
  for (const auto& [n, t] : v) parts.push_back(t.flatten());
  return torch::cat(parts);
}

Errors errors(const Pass& p, const Pass& ref) {
  Errors e{};
  e.logits = testing::rel_error(p.logits, ref.logits);
  e.loss = testing::rel_error(p.loss, ref.loss);
  e.grads = testing::rel_error(flat(p.grads), flat(ref.grads));
  e.buffers = testing::rel_error(flat(p.buffers), flat(ref.buffers));
  const double total = flat(ref.grads).norm().item<double>();
  for (size_t i = 0; i < p.grads.size(); ++i) {
    // Gradients that are zero in exact arithmetic (a BatchNorm bias feeding a train-mode BatchNorm through
    // a 1x1 convolution) are rounding noise on every device: no relative error is defined for them.
    if (ref.grads[i].second.norm().item<double>() < 1e-7 * total) continue;
    const double r = testing::rel_error(p.grads[i].second, ref.grads[i].second);
    if (!(r <= e.worst_grad)) {  // NaN counts as worst
      e.worst_grad = r;
      e.worst_grad_name = p.grads[i].first;
    }
  }
  return e;
}

void print(const char* what, const Errors& e) {
  std::printf("  %-22s logits %.3e  loss %.3e  grads %.3e  worst grad %.3e (%s)  BN stats %.3e\n", what,
              e.logits, e.loss, e.grads, e.worst_grad, e.worst_grad_name.c_str(), e.buffers);
}

struct Case {
  std::string arch;
  bool train;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.arch << (c.train ? ", train mode" : ", eval mode");
}
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.arch + (info.param.train ? "_train_mode" : "_eval_mode");
}

class CpuVsCuda : public ::testing::TestWithParam<Case> {};

TEST_P(CpuVsCuda, ForwardBackwardMatchesTheFloat64Reference) {
  REQUIRE_GPU();
  const std::string arch = GetParam().arch;
  const bool train = GetParam().train;
  NoTf32 no_tf32;
  torch::manual_seed(0);
  const NamedTensors weights = state_dict(*create_model(arch, deterministic(arch)));
  // Photo-like uint8 statistics (the seeds' synthetic batch), normalised as the loader's images are.
  // A dry run only exercises the code: a quarter of the pixels and half the batch keep it cheap on 2 cores.
  const int64_t batch = device.is_cuda() ? 8 : 4, size = device.is_cuda() ? 128 : 64;
  SyntheticLoader source(batch, static_cast<int>(size), 1000, /*seed=*/3);
  const Batch b = source.next(0, 0);
  const torch::Tensor images = normalize_images(b.images, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})
                                   .contiguous()
                                   .to(torch::kDouble);
  const torch::Tensor targets = smooth_one_hot(b.labels, 1000, 0.1).to(torch::kDouble);
  auto pass = [&](torch::Device dev, torch::ScalarType dtype, std::optional<torch::ScalarType> autocast,
                  double loss_scale = 1.0) {
    return run_pass(arch, train, weights, images, targets, dev, dtype, autocast, loss_scale);
  };

  const Pass ref = pass(torch::kCPU, torch::kDouble, std::nullopt);
  const Errors cpu32 = errors(pass(torch::kCPU, torch::kFloat, std::nullopt), ref);
  const Errors dev32 = errors(pass(device, torch::kFloat, std::nullopt), ref);
  const Errors cpu_bf16 = errors(pass(torch::kCPU, torch::kFloat, torch::kBFloat16), ref);
  const Errors dev_bf16 = errors(pass(device, torch::kFloat, torch::kBFloat16), ref);
  std::printf("%s on %s, %s mode, batch %lld at %lld px, relative to float64 on the CPU:\n", arch.c_str(),
              device.str().c_str(), train ? "train" : "eval", static_cast<long long>(batch),
              static_cast<long long>(size));
  print("cpu fp32", cpu32);
  print("device fp32 (no TF32)", dev32);
  print("cpu bf16 autocast", cpu_bf16);
  print("device bf16 autocast", dev_bf16);

  EXPECT_LE(dev32.logits, 10 * cpu32.logits + kFp32Floor);
  EXPECT_LE(dev32.loss, 10 * cpu32.loss + kFp32Floor);
  EXPECT_LE(dev32.grads, 10 * cpu32.grads + kFp32Floor);
  EXPECT_LE(dev32.worst_grad, 10 * cpu32.worst_grad + kFp32Floor) << dev32.worst_grad_name;
  EXPECT_LE(dev32.buffers, 10 * cpu32.buffers + kFp32Floor);
  EXPECT_LE(dev_bf16.buffers, 4 * cpu_bf16.buffers + kFp32Floor);
  if (train) return;  // mixed-precision gradients: eval mode only (see the top of this file)
  ASSERT_LT(cpu_bf16.logits, 0.1);
  ASSERT_LT(cpu_bf16.grads, 0.1);
  EXPECT_LE(dev_bf16.logits, 4 * cpu_bf16.logits);
  EXPECT_LE(dev_bf16.loss, 4 * cpu_bf16.loss + kFp32Floor);
  EXPECT_LE(dev_bf16.grads, 4 * cpu_bf16.grads);
  if (device.is_cuda()) {
    // fp16 autocast with a loss scale, as the GradScaler runs it (small gradients stay in fp16's range).
    const Errors dev_fp16 = errors(pass(device, torch::kFloat, torch::kHalf, 1024.0), ref);
    print("device fp16 autocast", dev_fp16);
    const double ratio = kFp16Unit / kBf16Unit;
    EXPECT_LE(dev_fp16.logits, 4 * ratio * cpu_bf16.logits);
    EXPECT_LE(dev_fp16.loss, 4 * ratio * cpu_bf16.loss + kFp32Floor);
    EXPECT_LE(dev_fp16.grads, 4 * ratio * cpu_bf16.grads);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CpuVsCuda,
                         ::testing::Values(Case{"resnet50", true}, Case{"resnet50", false},
                                           Case{"efficientnet_b0", true}, Case{"efficientnet_b0", false}),
                         case_name);

// Three updates of the real train step (SGD with momentum and weight decay groups, EMA) on both devices.
TEST(CpuVsCudaTrainStep, ThreeUpdatesMatchTheFloat64Reference) {
  REQUIRE_GPU();
  NoTf32 no_tf32;
  torch::manual_seed(1);
  const NamedTensors init = state_dict(*create_model("resnet18", {.num_classes = 10}));
  SyntheticLoader source(8, 64, 10, /*seed=*/5);
  const Batch b = source.next(0, 0);
  const torch::Tensor images =
      normalize_images(b.images, {0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}).contiguous().to(torch::kDouble);
  const torch::Tensor targets = smooth_one_hot(b.labels, 10, 0.1).to(torch::kDouble);
  auto train = [&](torch::Device dev, torch::ScalarType dtype) {
    ConvNetPtr model = create_model("resnet18", {.num_classes = 10});
    load_state_dict(*model, init);
    model->to(dev, dtype);
    model->train();
    MomentumSgd sgd(weight_decay_groups(*model, DecayPolicy::kAllButBatchNorm, 1e-4), 0.875, false);
    ModelEma ema(*model, 0.9);
    TrainStep step(model, sgd, {}, nullptr, &ema);
    for (int i = 0; i < 3; ++i) step.micro_step(images.to(dev, dtype), targets.to(dev, dtype), 0.1);
    NamedTensors out;
    for (const auto& [n, t] : state_dict(*model)) out.emplace_back(n, t.to(torch::kCPU, torch::kDouble));
    for (const auto& [n, t] : ema.state()) out.emplace_back("ema." + n, t.to(torch::kCPU, torch::kDouble));
    return out;
  };
  const NamedTensors ref = train(torch::kCPU, torch::kDouble);
  const NamedTensors cpu = train(torch::kCPU, torch::kFloat);
  const NamedTensors dev = train(device, torch::kFloat);
  double cpu_err = 0, dev_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!ref[i].second.is_floating_point()) {
      EXPECT_TRUE(torch::equal(dev[i].second, ref[i].second)) << ref[i].first;
      continue;
    }
    cpu_err = std::max(cpu_err, testing::rel_error(cpu[i].second, ref[i].second));
    dev_err = std::max(dev_err, testing::rel_error(dev[i].second, ref[i].second));
  }
  std::printf("resnet18, 3 SGD + EMA updates: worst tensor vs float64: cpu fp32 %.3e, %s fp32 %.3e\n",
              cpu_err, device.str().c_str(), dev_err);
  EXPECT_LE(dev_err, 10 * cpu_err + kFp32Floor);
}

// The loader's batches through pinned memory and the side-stream copy equal the synchronous CPU path:
// uint8 bit for bit, the normalised floats within 1e-6.
TEST(DeviceBatches, PinnedSideStreamCopyEqualsTheCpuPath) {
  REQUIRE_GPU();
  testing::ScratchDir dir;
  std::string shard;
  for (int i = 0; i < 48; ++i) {
    ImageU8 img(96 + i % 5 * 17, 80 + i % 7 * 13);
    for (size_t p = 0; p < img.pixels.size(); ++p)
      img.pixels[p] = static_cast<uint8_t>((p * (i + 5) + p / 97) % 253);
    ImageRecordFields f;
    f.jpeg = encode_jpeg(img, 90);
    f.label = i % 10 + 1;
    append_record(shard, encode_imagenet_record(f));
  }
  write_file_atomic(dir.file("train-00000-of-00001"), shard);
  auto dataset = std::make_shared<TFRecordDataset>(find_shards(dir.path().string(), "train"),
                                                   DatasetOptions{.num_classes = 10});
  LoaderOptions lo;
  lo.batch_size = 8;
  lo.workers = 3;
  lo.train = true;
  lo.seed = 11;
  lo.train_transform.size = 64;
  Loader loader(dataset, lo);
  const std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  DeviceBatches batches(device, mean, std);
  if (device.is_cuda()) {
    EXPECT_TRUE(batches.overlapping());
  }

  loader.start_epoch(0);
  std::vector<Batch> host;
  std::optional<Batch> first = loader.next();
  ASSERT_TRUE(first);
  if (device.is_cuda()) {
    EXPECT_TRUE(first->images.is_pinned());
  }
  host.push_back(*first);
  batches.stage(*first);
  int checked = 0;
  const int64_t n = device.is_cuda() ? 4096 : 128;
  const torch::Tensor busy = torch::randn({n, n}, torch::TensorOptions().device(device));
  while (batches.has_staged()) {
    auto [u8, labels] = batches.take_raw();
    const Batch h = host[static_cast<size_t>(checked)];  // a copy: push_back below may reallocate
    // Keep the compute stream busy while the next copy is in flight on the side stream.
    torch::Tensor work = busy;
    for (int k = 0; k < 4; ++k) work = torch::mm(work, busy) * 1e-3;
    if (std::optional<Batch> next = loader.next()) {
      host.push_back(*next);
      batches.stage(*next);
    }
    const torch::Tensor normalized = normalize_images(u8, mean, std);
    EXPECT_TRUE(torch::equal(u8.cpu(), h.images)) << "batch " << checked;
    EXPECT_TRUE(torch::equal(labels.cpu(), h.labels)) << "batch " << checked;
    const torch::Tensor cpu_normalized = normalize_images(h.images, mean, std);
    EXPECT_LE((normalized.cpu() - cpu_normalized).abs().max().item<double>(), 1e-6) << "batch " << checked;
    EXPECT_EQ(normalized.device(), device);
    EXPECT_TRUE(normalized.is_contiguous(torch::MemoryFormat::ChannelsLast));
    ++checked;
  }
  EXPECT_EQ(checked, 6);  // 48 records, batch 8
}

// fp16 autocast + GradScaler in the real train step on the device: an injected overflow skips that update
// (weights bit-identical), the scale halves, finite steps update.
TEST(GradScalerOnDevice, InjectedOverflowIsSkippedAndTheScaleBacksOff) {
  REQUIRE_GPU();
  ASSERT_TRUE(device.is_cuda()) << "fp16 autocast with loss scaling is a CUDA path (no gpu_dry_run copy)";
  torch::manual_seed(2);
  ConvNetPtr model = create_model("resnet18", {.num_classes = 10});
  model->to(device);
  model->train();
  MomentumSgd sgd(weight_decay_groups(*model, DecayPolicy::kAllButBatchNorm, 1e-4), 0.9, false);
  GradScaler scaler({.init_scale = 1024, .growth_interval = 1000});
  TrainStepOptions so;
  so.autocast_dtype = torch::kHalf;
  TrainStep step(model, sgd, so, &scaler);
  const torch::Tensor images = torch::randn({8, 3, 64, 64}, torch::TensorOptions().device(device));
  const torch::Tensor labels = torch::randint(0, 10, {8}, torch::TensorOptions().device(device));
  torch::Tensor targets = smooth_one_hot(labels, 10, 0.1);
  auto weights = [&] {  // parameters only: BatchNorm statistics move in every forward, skipped or not
    std::vector<torch::Tensor> parts;
    for (const auto& p : model->parameters()) parts.push_back(p.detach().flatten().cpu());
    return torch::cat(parts);
  };
  for (int i = 0; i < 4; ++i) {
    torch::Tensor t = targets.clone();
    if (i == 2) t[0][0] = std::numeric_limits<float>::infinity();
    const torch::Tensor before = weights();
    const MicroStepResult r = step.micro_step(images, t, 0.01);
    const torch::Tensor after = weights();
    EXPECT_TRUE(r.updated);
    EXPECT_EQ(r.skipped, i == 2) << "step " << i;
    EXPECT_EQ(torch::equal(before, after), i == 2) << "step " << i;
  }
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 512);
  EXPECT_EQ(step.updates(), 3);
}

// eval on the device over damaged shards (tests/infer/damaged_shards.h: a batch of nothing but bad records,
// an empty last batch): the bad records counted and left out, and the same figures as the clean split of the
// good records alone, and as the CPU's oneDNN plan on the damaged split.
TEST(ReaderModesOnDevice, DamagedSplitEvaluatesTheGoodRecords) {
  REQUIRE_GPU();
  testing::ScratchDir dir;
  testing::write_image_folder(dir.path() / "folder", 3, 6, 40);
  testing::write_damaged_shards(dir.path() / "folder", dir.path());
  torch::manual_seed(5);
  save_safetensors(dir.file("w.safetensors"), state_dict(*create_model("resnet18", {.num_classes = 3})));
  auto eval = [&](const std::string& data, const std::string& device_name) {
    testing::RecordingConsole console;
    return run_eval_mode(resolve_config("", {{"arch", "resnet18"},
                                             {"num_classes", "3"},
                                             {"weights", dir.file("w.safetensors")},
                                             {"data_dir", dir.file(data)},
                                             {"batch_size", "4"},
                                             {"eval_image_size", "32"},
                                             {"warmup_steps", "0"},
                                             {"workers", "2"},
                                             {"device", device_name},
                                             {"tf32", "false"}}),
                         {&console})
        .raw;
  };
  const std::string on_device = device.is_cuda() ? "cuda" : "cpu";
  const EvalResult damaged = eval("damaged", on_device), clean = eval("good", on_device);
  const EvalResult cpu = eval("damaged", "cpu");
  for (const EvalResult* r : {&damaged, &cpu}) {
    EXPECT_EQ(r->images, testing::DamagedShards::kGood);
    EXPECT_EQ(r->skipped_records, testing::DamagedShards::kBad);
  }
  EXPECT_EQ(clean.images, testing::DamagedShards::kGood);
  EXPECT_EQ(clean.skipped_records, 0);
  EXPECT_NEAR(damaged.loss, clean.loss, 1e-5 * std::max(1.0, clean.loss));
  EXPECT_NEAR(damaged.loss, cpu.loss, 1e-4 * std::max(1.0, cpu.loss));
}

}  // namespace
}  // namespace convnets
