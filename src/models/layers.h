// Building blocks shared by the model families.
#pragma once
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace convnets {

struct BatchNormConfig {
  double momentum = 0.1;  // PyTorch convention: running = (1 - momentum) * running + momentum * batch
  double eps = 1e-5;
};

// How a BatchNorm layer in training mode gets its batch statistics and normalises. The default is its own
// batch (torch's BatchNorm2d); data parallel's SyncBatchNorm takes them over every rank's batch.
class BatchStatistics {
 public:
  virtual ~BatchStatistics() = default;
  virtual torch::Tensor forward(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) = 0;
};

// The zoo's BatchNorm: torch's BatchNorm2d (same parameters, buffers and state-dict names) whose
// training-mode forward a model may hand to a BatchStatistics of its own; eval mode is always BatchNorm2d's.
class BatchNormImpl : public torch::nn::BatchNorm2dImpl {
 public:
  explicit BatchNormImpl(const torch::nn::BatchNorm2dOptions& options)
      : torch::nn::BatchNorm2dImpl(options) {}
  torch::Tensor forward(const torch::Tensor& x);
  void set_batch_statistics(std::shared_ptr<BatchStatistics> statistics) {
    statistics_ = std::move(statistics);
  }

 private:
  std::shared_ptr<BatchStatistics> statistics_;
};
TORCH_MODULE(BatchNorm);

BatchNorm make_batch_norm(int64_t channels, const BatchNormConfig& bn);
// Every BatchNorm of `model` takes its training-mode statistics from `statistics` (nullptr: its own batch).
// Returns how many layers it set.
int64_t set_batch_statistics(torch::nn::Module& model, const std::shared_ptr<BatchStatistics>& statistics);
torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                            bool bias = false);

enum class Activation { kNone, kReLU, kSiLU, kSigmoid };

// Applies `act` to x in place and returns it.
torch::Tensor activate_(torch::Tensor x, Activation act);

// torchvision's Conv2dNormActivation: children "0" (conv, 'same'-style symmetric padding (k-1)/2, no bias)
// and "1" (BatchNorm2d), then the activation (no parameters, so no child).
class ConvNormActImpl : public torch::nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Activation act,
                  const BatchNormConfig& bn);
  torch::Tensor forward(torch::Tensor x);
  Activation activation() const { return act_; }

  torch::nn::Conv2d conv{nullptr};
  BatchNorm bn{nullptr};

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
