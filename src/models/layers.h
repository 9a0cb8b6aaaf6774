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
#include <utility>
#include <vector>

namespace convnets {

class GraphBuilder;  // models/inference_graph.h
class QatForward;    // models/qat.h

// A BatchNorm layer's settings: the one type for them, from the registry's conventions to the layers.
struct BatchNormSettings {
  double eps = 1e-5;
  double momentum = 0.1;  // PyTorch convention: running = (1 - momentum) * running + momentum * batch
  bool operator==(const BatchNormSettings&) const = default;
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

BatchNorm make_batch_norm(int64_t channels, const BatchNormSettings& bn);
// Every BatchNorm of `model` takes its training-mode statistics from `statistics` (nullptr: its own batch).
// Returns how many layers it set.
int64_t set_batch_statistics(torch::nn::Module& model, const std::shared_ptr<BatchStatistics>& statistics);

// How a convolution pads: symmetric (k - 1) / 2 (torchvision), or TensorFlow's "same" (timm's `tf_` models):
// a strided convolution pads its input so the output has ceil(size / stride) rows, the odd row at the bottom
// / right, worked out from each input's size. At stride 1 both are the same.
enum class Padding { kSymmetric, kSame };

// A convolution without dilation; `Padding::kSame` with stride > 1 leaves padding to pad_same at run time.
torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                            bool bias = false, Padding padding = Padding::kSymmetric);
// TensorFlow's "same" padding of `x` for a kernel and stride (nothing to add at stride 1, odd kernels).
torch::Tensor pad_same(const torch::Tensor& x, int64_t kernel, int64_t stride);
// TensorFlow's "same" padding of one spatial dimension of size `in`: {before, after} (the odd one after).
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride);

enum class Activation { kNone, kReLU, kSiLU, kSigmoid };

// Applies `act` to x in place and returns it.
torch::Tensor activate_(torch::Tensor x, Activation act);

// A convolution, its BatchNorm and its activation: the unit every family is made of. The modules are
// registered by whoever owns them, under the names its layout uses (torchvision's "0" / "1" children, timm's
// conv_pw / bn1 ...); this is a view of them.
struct ConvBnAct {
  torch::nn::Conv2d conv{nullptr};
  BatchNorm bn{nullptr};
  Activation act = Activation::kNone;
  bool same_padding = false;  // pad_same before the convolution (Padding::kSame at stride > 1)
  torch::Tensor forward(const torch::Tensor& x) const;
};
// Makes the unit and registers its convolution and BatchNorm in `parent` as `conv_name` and `bn_name`.
ConvBnAct register_conv_bn_act(torch::nn::Module& parent, const std::string& conv_name,
                               const std::string& bn_name, int64_t in, int64_t out, int64_t kernel,
                               int64_t stride, int64_t groups, Activation act, const BatchNormSettings& bn,
                               Padding padding = Padding::kSymmetric);

// torchvision's Conv2dNormActivation: children "0" (conv, no bias) and "1" (BatchNorm2d), then the activation
// (no parameters, so no child).
class ConvNormActImpl : public torch::nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Activation act,
                  const BatchNormSettings& bn, Padding padding = Padding::kSymmetric);
  torch::Tensor forward(torch::Tensor x) { return unit.forward(x); }
  Activation activation() const { return unit.act; }

  ConvBnAct unit;
};
TORCH_MODULE(ConvNormAct);

// Squeeze-excitation: GAP -> 1x1 conv (fc1, bias) -> activation -> 1x1 conv (fc2, bias) -> sigmoid -> scale.
// EfficientNet's uses SiLU, SE-ResNeXt's (timm's SEModule) ReLU; torchvision and timm's SEModule name the
// convolutions fc1 / fc2, timm's EfficientNets conv_reduce / conv_expand.
class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze_channels, Activation act = Activation::kSiLU,
                        const std::string& reduce_name = "fc1", const std::string& expand_name = "fc2");
  torch::Tensor forward(torch::Tensor x);
  // The gate's ops on `input`; returns input * gate.
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const;

  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};

 private:
  Activation act_;
  std::string reduce_name_, expand_name_;
};
TORCH_MODULE(SqueezeExcitation);

// Per-sample stochastic depth ("row" mode): drops whole residual branches, scaling survivors by 1/(1-p).
torch::Tensor stochastic_depth(const torch::Tensor& x, double p, bool training);

// timm's make_divisible: `v` rounded to the nearest multiple of `divisor` (at least `divisor`); when that
// loses more than (1 - round_limit) of `v`, one `divisor` more (round_limit 0: never).
int64_t make_divisible(double v, int64_t divisor = 8, double round_limit = 0.9);

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
  // The model's inference form (models/inference_graph.h), op by op from input value 0 to the logits.
  virtual void append_inference_ops(GraphBuilder& b) const = 0;
  virtual int64_t num_classes() const = 0;
  // Quantization-aware training: from now on forward() runs `qat`, built on this model (models/qat.h);
  // nullptr: the float forward again. The stages are the float forward's.
  void set_qat(std::shared_ptr<const QatForward> qat) { qat_ = std::move(qat); }
  const QatForward* qat() const { return qat_.get(); }

 protected:
  std::vector<Stage> stages_;

 private:
  std::shared_ptr<const QatForward> qat_;
};
using ConvNetPtr = std::shared_ptr<ConvNetImpl>;

}  // namespace convnets
