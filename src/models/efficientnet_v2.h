// EfficientNet V2: S / M / L in torchvision's layout (features.N, FusedMBConv + MBConv, head 1280) and the
// B0..B3 base family in timm's layout (conv_stem, blocks.S.B.conv_exp, ..., the tf_efficientnetv2_b* names).
// docs/models.md has the stage tables and what differs between the implementations.
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>

#include "models/efficientnet.h"
#include "models/inference_graph.h"
#include "models/layers.h"

namespace convnets {

// One stage: `repeats` FusedMBConv (conv k x k expanding, then 1x1) or MBConv blocks.
struct V2StageConfig {
  bool fused;
  int64_t expand_ratio, kernel, stride, in_channels, out_channels, repeats;
};

// Whose module names the model registers (and so whose state dicts it reads and writes).
enum class V2Layout { kTorchvision, kTimm };

struct EfficientNetV2Options {
  EfficientNetV2Options(std::vector<V2StageConfig> stages, int64_t head_channels, double dropout)
      : stages_(std::move(stages)), head_channels_(head_channels), dropout_(dropout) {}
  TORCH_ARG(std::vector<V2StageConfig>, stages);  // already scaled: channels and repeats as built
  TORCH_ARG(int64_t, head_channels);
  TORCH_ARG(double, dropout);
  TORCH_ARG(double, stochastic_depth) = 0.2;  // the last block's drop rate (linear in the block index)
  TORCH_ARG(int64_t, num_classes) = 1000;
  // torchvision's V2 (PyTorch's default momentum); timm's the same
  TORCH_ARG(BatchNormSettings, batch_norm) = BatchNormSettings{1e-3, 0.1};
  TORCH_ARG(V2Layout, layout) = V2Layout::kTorchvision;
  TORCH_ARG(Padding, padding) = Padding::kSymmetric;  // kSame: TensorFlow's (timm's tf_ weights)
};

// The stage tables (docs/models.md): S has 6 stages, M and L 7; the base (B0) 6, to be scaled.
const std::vector<V2StageConfig>& efficientnet_v2_stages(char variant);  // 's', 'm', 'l', 'b' (base)
// The base family scaled by (width, depth): channels make_divisible(c * width, 8) without V1's 90% rule,
// repeats ceil(r * depth); returns the stages and sets `stem` and `head` to the scaled stem and head widths.
std::vector<V2StageConfig> scale_v2_base(double width, double depth, int64_t* stem, int64_t* head);

// FusedMBConv: expand ratio 1: one k x k conv + BN + SiLU (it keeps its activation); else k x k conv (to
// in * e) + BN + SiLU, then 1x1 conv + BN. Residual when stride 1 and in == out, with stochastic depth.
class FusedMBConvImpl : public torch::nn::Module, public InferenceBlock {
 public:
  FusedMBConvImpl(const V2StageConfig& config, double drop_rate, const BatchNormSettings& bn, V2Layout layout,
                  Padding padding);
  torch::Tensor forward(torch::Tensor x);
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const override;
  double drop_rate() const { return drop_rate_; }

 private:
  ConvBnAct expand_, project_;  // project_.conv is empty for expand ratio 1
  double drop_rate_;
  bool use_residual_;
  std::string expand_name_, project_name_;  // their names in the layout (for the inference ops)
};
TORCH_MODULE(FusedMBConv);

// MBConv in timm's names (conv_pw, bn1, conv_dw, bn2, se.conv_reduce / conv_expand, conv_pwl, bn3); in
// torchvision's layout V2 uses V1's MBConvImpl.
class TimmMBConvImpl : public torch::nn::Module, public InferenceBlock {
 public:
  TimmMBConvImpl(const MBConvStageConfig& config, double drop_rate, const BatchNormSettings& bn,
                 Padding padding);
  torch::Tensor forward(torch::Tensor x);
  int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const override;
  double drop_rate() const { return drop_rate_; }

  ConvBnAct pw, dw, pwl;
  SqueezeExcitation se{nullptr};

 private:
  double drop_rate_;
  bool use_residual_;
};
TORCH_MODULE(TimmMBConv);

class EfficientNetV2Impl : public ConvNetImpl {
 public:
  explicit EfficientNetV2Impl(const EfficientNetV2Options& options);
  void reset_parameters();
  const EfficientNetV2Options& options() const { return options_; }
  void append_inference_ops(GraphBuilder& b) const override;
  int64_t num_classes() const override { return options_.num_classes(); }

  torch::nn::Linear fc{nullptr};

 private:
  EfficientNetV2Options options_;
  ConvBnAct stem_, head_;
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> stages_blocks_;
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(EfficientNetV2);

}  // namespace convnets
