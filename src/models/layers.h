// Building blocks shared by the model families.
#pragma once
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <string>
#include <vector>

namespace convnets {

// Conv / linear forward that also reports multiply-accumulates to an active MacCounter.
torch::Tensor conv_forward(torch::nn::Conv2d& conv, const torch::Tensor& x);
torch::Tensor linear_forward(torch::nn::Linear& linear, const torch::Tensor& x);

struct BatchNormConfig {
  double momentum = 0.1;  // PyTorch convention: running = (1 - momentum) * running + momentum * batch
  double eps = 1e-5;
};

torch::nn::BatchNorm2d make_batch_norm(int64_t channels, const BatchNormConfig& bn);

// Every BatchNorm2d forward in the zoo goes through here. A process-wide hook (data parallel's SyncBatchNorm)
// may take over modules in training mode; without one this is bn.forward(x).
using BatchNormHook = std::function<torch::Tensor(torch::nn::BatchNorm2dImpl&, const torch::Tensor&)>;
torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);
// Installs `hook` (empty: none) and returns the previous one.
BatchNormHook set_batch_norm_hook(BatchNormHook hook);
torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                            bool bias = false);

enum class Activation { kNone, kReLU, kSiLU };

// torchvision's Conv2dNormActivation: children "0" (conv, 'same'-style symmetric padding (k-1)/2, no bias)
// and "1" (BatchNorm2d), then the activation (no parameters, so no child).
class ConvNormActImpl : public torch::nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Activation act,
                  const BatchNormConfig& bn);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  Activation act_;
};
TORCH_MODULE(ConvNormAct);

// One row of `convnets info`'s per-stage table; a model's forward is exactly its stages run in order.
struct Stage {
  std::string name;
  std::vector<std::shared_ptr<torch::nn::Module>> modules;  // what the stage's parameters live in
  std::function<torch::Tensor(const torch::Tensor&)> forward;
};

// Base of every classifier in the zoo.
class ConvNetImpl : public torch::nn::Module {
 public:
  explicit ConvNetImpl(std::string name) : torch::nn::Module(std::move(name)) {}
  torch::Tensor forward(torch::Tensor x);
  const std::vector<Stage>& stages() const { return stages_; }

 protected:
  std::vector<Stage> stages_;
};
using ConvNetPtr = std::shared_ptr<ConvNetImpl>;

}  // namespace convnets
