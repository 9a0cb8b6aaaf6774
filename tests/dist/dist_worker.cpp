// One rank of a data-parallel job for tests/dist/check_data_parallel.py: a small CNN (with BatchNorm
// buffers) trained with SGD + momentum on a fixed synthetic dataset, gradients averaged by GradReducer.
// Rank r of W with per-rank batch b reads rows [g*W*b + r*b, g*W*b + (r+1)*b) of global micro-batch g, so
// W ranks with batch b see exactly the batches of one process with batch W*b.
//
// usage: dist_worker --out FILE --steps N --batch b [--accum k] [--bucket_kb K] [--compression
// none|fp16|bf16]
//                    [--timeout_s T] [--loop] [--backend gloo] [--bn_train [--sync_bn]] [--amp]
// --loop: after training, keep all-reducing forever (the fault tests kill or stop one rank).
// --bn_train: BatchNorm in training mode on the gradient path (convnets::batch_norm); --sync_bn installs
// SyncBatchNorm, so that W ranks again equal one process with the whole batch, running statistics included.
// --amp: the forward pass under bf16 autocast (the trainer's CPU mixed precision), fp32 gradients reduced.
// --double: model, data and gradients in float64, so that identities (W ranks == 1 process) hold to ~1e-12
// on any CPU instead of to fp32's summation-order error.
// --device cuda: every rank on GPU 0 (ranks share it; Gloo reduces CUDA tensors through host memory).
// --fp16 (CUDA): fp16 autocast with a dynamic GradScaler (init 1024); --overflow_step S --overflow_rank R
// makes rank R's loss infinite at step S, so every rank must skip that update and halve its scale.
#include <ATen/Context.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <iostream>
#include <limits>
#include <optional>
#include <string>

#include "dist/dist_env.h"
#include "dist/grad_reducer.h"
#include "dist/process_group.h"
#include "dist/sync_batch_norm.h"
#include "models/layers.h"
#include "run/autocast.h"
#include "train/grad_scaler.h"
#include "util/weights.h"

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    bn = register_module("bn", convnets::BatchNorm(torch::nn::BatchNorm2dOptions(8)));
    unused = register_module("unused", torch::nn::Linear(4, 4));  // never gets a gradient
    fc = register_module("fc", torch::nn::Linear(8 * 8 * 8, 5));
  }
  torch::Tensor forward(torch::Tensor x) {
    // Default: BatchNorm off the gradient path (batch statistics would differ between a per-rank batch and
    // the big batch); its running statistics are set by hand per rank to test averaging.
    x = conv->forward(x);
    if (bn_train) x = bn->forward(x);
    return fc->forward(torch::relu(x).flatten(1));
  }
  bool bn_train = false;
  torch::nn::Conv2d conv{nullptr};
  convnets::BatchNorm bn{nullptr};
  torch::nn::Linear unused{nullptr}, fc{nullptr};
};
TORCH_MODULE(Net);

}  // namespace

int run(int argc, char** argv) {
  std::string out, compression = "none", backend = "gloo", device_name = "cpu";
  int64_t steps = 4, batch = 4, accum = 1, bucket_kb = 25 * 1024, timeout_s = 60;
  int64_t overflow_step = -1, overflow_rank = -1;
  bool loop = false, bn_train = false, sync_bn = false, amp = false, fp16 = false, use_double = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--out")
      out = next();
    else if (a == "--steps")
      steps = std::stoll(next());
    else if (a == "--batch")
      batch = std::stoll(next());
    else if (a == "--accum")
      accum = std::stoll(next());
    else if (a == "--bucket_kb")
      bucket_kb = std::stoll(next());
    else if (a == "--compression")
      compression = next();
    else if (a == "--timeout_s")
      timeout_s = std::stoll(next());
    else if (a == "--backend")
      backend = next();
    else if (a == "--loop")
      loop = true;
    else if (a == "--bn_train")
      bn_train = true;
    else if (a == "--sync_bn")
      sync_bn = true;
    else if (a == "--amp")
      amp = true;
    else if (a == "--device")
      device_name = next();
    else if (a == "--fp16")
      fp16 = true;
    else if (a == "--double")
      use_double = true;
    else if (a == "--overflow_step")
      overflow_step = std::stoll(next());
    else if (a == "--overflow_rank")
      overflow_rank = std::stoll(next());
    else
      throw std::invalid_argument("unknown argument " + a);
  }
  torch::set_num_threads(1);
  const convnets::DistEnv env = convnets::detect_dist_env(convnets::process_env());
  convnets::ProcessGroupOptions po;
  if (backend != "gloo" && backend != "nccl") throw std::invalid_argument("--backend: gloo or nccl");
  po.backend = backend == "nccl" ? convnets::DistBackend::kNccl : convnets::DistBackend::kGloo;
  po.timeout = std::chrono::seconds(timeout_s);
  // As the app does: a failed collective prints the fault report and ends the process at once.
  po.on_fault = [](const std::string& report) {
    std::cout << std::flush;
    std::cerr << "\n" << report << std::endl;
    std::_Exit(1);
  };
  if (device_name != "cpu" && device_name != "cuda") throw std::invalid_argument("--device: cpu or cuda");
  const torch::Device device =
      device_name == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (fp16 && !device.is_cuda()) throw std::invalid_argument("--fp16 needs --device cuda");
  if (device.is_cuda()) {  // fp32 and run-to-run repeatable: runs may differ only by summation order
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setDeterministicCuDNN(true);
  }
  auto group = convnets::ProcessGroup::create(env, device, po);
  std::cout << "rank " << env.rank << "/" << env.world_size << " via " << env.launcher << " ready"
            << std::endl;

  torch::manual_seed(100 + env.rank);  // different inits: the broadcast must make them equal
  Net net;
  net->bn_train = bn_train;
  const auto dtype = use_double ? torch::kDouble : torch::kFloat;
  if ((amp || fp16) && use_double) throw std::invalid_argument("--double excludes --amp / --fp16");
  net->to(device, dtype);
  convnets::broadcast_module_state(*net, *group);
  if (!bn_train) {  // rank-specific running statistics: averaging must give their mean
    torch::NoGradGuard g;
    net->bn->running_mean.fill_(static_cast<double>(env.rank));
    convnets::average_module_buffers(*net, *group);
  }
  if (sync_bn) convnets::use_sync_batch_norm(*net, *group);

  std::vector<torch::Tensor> params;
  for (const auto& p : net->parameters()) params.push_back(p);
  convnets::GradReducerOptions ro;
  ro.bucket_bytes = bucket_kb * 1024;
  if (compression == "fp16")
    ro.compression = convnets::GradCompression::kFp16;
  else if (compression == "bf16")
    ro.compression = convnets::GradCompression::kBf16;
  else if (compression != "none")
    throw std::invalid_argument("--compression: none, fp16 or bf16");
  convnets::GradReducer reducer(params, *group, ro);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1).momentum(0.9));
  std::unique_ptr<convnets::GradScaler> scaler;
  if (fp16) scaler = std::make_unique<convnets::GradScaler>(convnets::GradScalerOptions{.init_scale = 1024});
  std::optional<at::ScalarType> autocast;
  if (amp) autocast = torch::kBFloat16;
  if (fp16) autocast = torch::kHalf;

  const int64_t world = env.world_size;
  const int64_t global_micro = batch * world;
  torch::manual_seed(7);
  const auto data = torch::randn({steps * accum * global_micro, 3, 8, 8}).to(device, dtype);
  const auto labels = torch::randint(0, 5, {steps * accum * global_micro}).to(device);
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t m = 0; m < accum; ++m) {
      const int64_t g = s * accum + m;
      const int64_t start = g * global_micro + env.rank * batch;
      reducer.set_sync(m + 1 == accum);
      torch::Tensor logits;
      {
        convnets::AutocastGuard guard(device.type(), autocast);
        logits = net->forward(data.narrow(0, start, batch));
      }
      auto loss = torch::nn::functional::cross_entropy(logits.to(use_double ? torch::kDouble : torch::kFloat),
                                                       labels.narrow(0, start, batch));
      loss = loss / static_cast<double>(accum);
      if (s == overflow_step && env.rank == overflow_rank)
        loss = loss * std::numeric_limits<float>::infinity();
      if (scaler) loss = scaler->scale(loss);
      loss.backward();
    }
    reducer.finish();
    bool finite = true;
    if (scaler) finite = scaler->unscale(params);
    if (finite) opt.step();
    if (scaler) {
      scaler->update();
      std::cout << "rank " << env.rank << " step " << s + 1 << ": " << (finite ? "applied" : "skipped")
                << ", scale " << scaler->current_scale() << std::endl;
    }
    opt.zero_grad();
    group->note_progress(s + 1);
  }
  std::cout << "rank " << env.rank << ": " << reducer.num_buckets() << " buckets" << std::endl;
  if (loop) {
    for (int64_t i = 0;; ++i) {
      auto t = torch::ones({1024});
      group->all_reduce_sum(t);
      group->note_progress(steps + i);
    }
  }
  if (env.rank == 0 && !out.empty()) {
    convnets::NamedTensors state;
    for (const auto& item : net->named_parameters())
      state.emplace_back(item.key(), item.value().detach().cpu().clone());
    state.emplace_back("bn.running_mean", net->bn->running_mean.cpu().clone());
    state.emplace_back("bn.running_var", net->bn->running_var.cpu().clone());
    if (scaler) {
      const auto st = scaler->state();
      state.emplace_back("scaler.scale", st[0]);
      state.emplace_back("scaler.skipped", st[2]);
    }
    convnets::save_weights(out, state);
  }
  group->barrier();
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dist_worker: " << e.what() << std::endl;
    return 2;
  }
}
