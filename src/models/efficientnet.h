// EfficientNet v1 B0..B7 with torchvision's module layout (features.N / classifier.1) and the TF recipe's
// hyper-parameters (BN momentum 0.01 / eps 1e-3, fan_out truncated-normal init, drop-connect up to 0.2).
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>

#include "models/inference_graph.h"
#include "models/init.h"
#include "models/layers.h"

namespace convnets {

// One row of the B0 block table: a stage of `repeats` MBConv blocks.
struct MBConvStageConfig {
  int64_t expand_ratio, kernel, stride, in_channels, out_channels, repeats;
};
const std::vector<MBConvStageConfig>& efficientnet_b0_stages();

// round_filters: channels * width rounded to a multiple of 8 (never below 90% of the exact value).
int64_t round_filters(double channels, double width_mult);
// round_repeats: ceil(repeats * depth).
int64_t round_repeats(int64_t repeats, double depth_mult);

// The TF recipes' initialisation (V1 and V2): VarianceScaling(2.0, fan_out, truncated normal) on every
// convolution, biases zero, BatchNorm reset, the classifier U(+-sqrt(1 / classes)).
void reset_efficientnet_parameters(torch::nn::Module& model, torch::nn::LinearImpl& fc);

// NVIDIA's TF2 EfficientNet recipes (docs/recipes.md), V1's and V2's alike: RMSprop with epsilon inside the
// square root, LR 0.005 per 128 images, cosine after 5 warmup epochs, label smoothing 0.1, Keras l2 5e-6 (=
// weight decay 1e-5) off BatchNorm and depthwise kernels, EMA 0.9999, fan_out init; then `own`, a model's
// own values (augmentation, mixing, stages, epochs, batch).
std::vector<std::pair<std::string, std::string>> efficientnet_tf2_recipe(
    std::vector<std::pair<std::string, std::string>> own);

struct EfficientNetOptions {
  EfficientNetOptions(double width_mult, double depth_mult, double dropout)
      : width_mult_(width_mult), depth_mult_(depth_mult), dropout_(dropout) {}
  TORCH_ARG(double, width_mult);
  TORCH_ARG(double, depth_mult);
  TORCH_ARG(double, dropout);  // before the classifier
  TORCH_ARG(double,
            stochastic_depth) = 0.2;  // per-sample drop rate of the last block (linear in block index)
  TORCH_ARG(int64_t, num_classes) = 1000;
  TORCH_ARG(BatchNormSettings, batch_norm) = BatchNormSettings{1e-3, 0.01};
};

// Inverted residual: [expand 1x1] -> depthwise kxk -> SE (squeeze width: the block input's / 4) -> project
// 1x1, all under the child `block` (torchvision's MBConv, also EfficientNet V2's).
class MBConvImpl : public torch::nn::Module, public InferenceBlock {
 public:
  MBConvImpl(const MBConvStageConfig& config, double drop_rate, const BatchNormSettings& bn,
             Padding padding = Padding::kSymmetric);
  torch::Tensor forward(torch::Tensor x);
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const override;
  double drop_rate() const { return drop_rate_; }
  bool has_residual() const { return use_residual_; }

  torch::nn::ModuleList block;  // [expand], depthwise, se, project
  ConvNormAct expand{nullptr}, depthwise{nullptr}, project{nullptr};
  SqueezeExcitation se{nullptr};

 private:
  double drop_rate_;
  bool use_residual_;
};
TORCH_MODULE(MBConv);

class EfficientNetImpl : public ConvNetImpl {
 public:
  explicit EfficientNetImpl(const EfficientNetOptions& options);
  void reset_parameters();
  const EfficientNetOptions& options() const { return options_; }
  void append_inference_ops(GraphBuilder& b) const override;
  int64_t num_classes() const override { return options_.num_classes(); }

  torch::nn::ModuleList features;    // 0: stem, 1..7: lists of MBConv blocks, 8: head conv
  torch::nn::ModuleList classifier;  // 0: dropout, 1: linear
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  EfficientNetOptions options_;
};
TORCH_MODULE(EfficientNet);

}  // namespace convnets
