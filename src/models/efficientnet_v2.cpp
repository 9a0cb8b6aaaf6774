#include "models/efficientnet_v2.h"

#include <cmath>

namespace convnets {

const std::vector<V2StageConfig>& efficientnet_v2_stages(char variant) {
  // fused, expand, kernel, stride, in, out, repeats (torchvision's _efficientnet_conf, timm's arch_def)
  static const std::vector<V2StageConfig> s = {{true, 1, 3, 1, 24, 24, 2},    {true, 4, 3, 2, 24, 48, 4},
                                               {true, 4, 3, 2, 48, 64, 4},    {false, 4, 3, 2, 64, 128, 6},
                                               {false, 6, 3, 1, 128, 160, 9}, {false, 6, 3, 2, 160, 256, 15}};
  static const std::vector<V2StageConfig> m = {{true, 1, 3, 1, 24, 24, 3},     {true, 4, 3, 2, 24, 48, 5},
                                               {true, 4, 3, 2, 48, 80, 5},     {false, 4, 3, 2, 80, 160, 7},
                                               {false, 6, 3, 1, 160, 176, 14}, {false, 6, 3, 2, 176, 304, 18},
                                               {false, 6, 3, 1, 304, 512, 5}};
  static const std::vector<V2StageConfig> l = {{true, 1, 3, 1, 32, 32, 4},     {true, 4, 3, 2, 32, 64, 7},
                                               {true, 4, 3, 2, 64, 96, 7},     {false, 4, 3, 2, 96, 192, 10},
                                               {false, 6, 3, 1, 192, 224, 19}, {false, 6, 3, 2, 224, 384, 25},
                                               {false, 6, 3, 1, 384, 640, 7}};
  static const std::vector<V2StageConfig> base = {
      {true, 1, 3, 1, 32, 16, 1},  {true, 4, 3, 2, 16, 32, 2},   {true, 4, 3, 2, 32, 48, 2},
      {false, 4, 3, 2, 48, 96, 3}, {false, 6, 3, 1, 96, 112, 5}, {false, 6, 3, 2, 112, 192, 8}};
  switch (variant) {
    case 's':
      return s;
    case 'm':
      return m;
    case 'l':
      return l;
    case 'b':
      return base;
  }
  throw std::invalid_argument(std::string("efficientnet_v2_stages: no variant '") + variant + "'");
}

std::vector<V2StageConfig> scale_v2_base(double width, double depth, int64_t* stem, int64_t* head) {
  // timm's round_chs_fn with round_limit 0: no "+8 when below 90%" (V1's rule would make B3's stage 1 24).
  auto channels = [&](int64_t c) { return make_divisible(static_cast<double>(c) * width, 8, 0.0); };
  std::vector<V2StageConfig> out = efficientnet_v2_stages('b');
  for (auto& c : out) {
    c.in_channels = channels(c.in_channels);
    c.out_channels = channels(c.out_channels);
    c.repeats = static_cast<int64_t>(std::ceil(static_cast<double>(c.repeats) * depth));
  }
  *stem = out.front().in_channels;
  *head = channels(1280);
  return out;
}

FusedMBConvImpl::FusedMBConvImpl(const V2StageConfig& c, double drop_rate, const BatchNormSettings& bn,
                                 V2Layout layout, Padding padding)
    : drop_rate_(drop_rate), use_residual_(c.stride == 1 && c.in_channels == c.out_channels) {
  const int64_t mid = make_divisible(static_cast<double>(c.in_channels * c.expand_ratio), 8);
  if (layout == V2Layout::kTorchvision) {
    torch::nn::ModuleList block;
    if (c.expand_ratio == 1) {
      auto conv =
          ConvNormAct(c.in_channels, c.out_channels, c.kernel, c.stride, 1, Activation::kSiLU, bn, padding);
      block->push_back(conv);
      expand_ = conv->unit;
    } else {
      auto conv = ConvNormAct(c.in_channels, mid, c.kernel, c.stride, 1, Activation::kSiLU, bn, padding);
      auto pwl = ConvNormAct(mid, c.out_channels, 1, 1, 1, Activation::kNone, bn);
      block->push_back(conv);
      block->push_back(pwl);
      expand_ = conv->unit;
      project_ = pwl->unit;
    }
    register_module("block", block);
    expand_name_ = "block.0";
    project_name_ = "block.1";
  } else if (c.expand_ratio == 1) {  // timm's ConvBnAct
    expand_ = register_conv_bn_act(*this, "conv", "bn1", c.in_channels, c.out_channels, c.kernel, c.stride, 1,
                                   Activation::kSiLU, bn, padding);
    expand_name_ = "conv";
  } else {  // timm's EdgeResidual
    expand_ = register_conv_bn_act(*this, "conv_exp", "bn1", c.in_channels, mid, c.kernel, c.stride, 1,
                                   Activation::kSiLU, bn, padding);
    project_ =
        register_conv_bn_act(*this, "conv_pwl", "bn2", mid, c.out_channels, 1, 1, 1, Activation::kNone, bn);
    expand_name_ = "conv_exp";
    project_name_ = "conv_pwl";
  }
}

torch::Tensor FusedMBConvImpl::forward(torch::Tensor x) {
  torch::Tensor out = expand_.forward(x);
  if (!project_.conv.is_empty()) out = project_.forward(out);
  if (!use_residual_) return out;
  out = stochastic_depth(out, drop_rate_, is_training());
  out += x;
  return out;
}

int FusedMBConvImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  const int residual = use_residual_ ? input : -1;
  if (project_.conv.is_empty()) {
    // The single convolution keeps its activation, and the residual comes after it (a convolution op adds
    // its residual before the activation): a separate add.
    const int y = b.conv_bn_act(expand_, input, name + "." + expand_name_);
    if (!use_residual_) return y;
    const int sum = b.add(y, input, Activation::kNone, name + ".add");
    b.set_drop_path(sum, drop_rate_);
    return sum;
  }
  const int y = b.conv_bn_act(expand_, input, name + "." + expand_name_);
  const int out = b.conv_bn_act(project_, y, name + "." + project_name_, residual);
  if (use_residual_) b.set_drop_path(out, drop_rate_);
  return out;
}

TimmMBConvImpl::TimmMBConvImpl(const MBConvStageConfig& c, double drop_rate, const BatchNormSettings& bn,
                               Padding padding)
    : drop_rate_(drop_rate), use_residual_(c.stride == 1 && c.in_channels == c.out_channels) {
  const int64_t mid = make_divisible(static_cast<double>(c.in_channels * c.expand_ratio), 8);
  pw = register_conv_bn_act(*this, "conv_pw", "bn1", c.in_channels, mid, 1, 1, 1, Activation::kSiLU, bn);
  dw = register_conv_bn_act(*this, "conv_dw", "bn2", mid, mid, c.kernel, c.stride, mid, Activation::kSiLU, bn,
                            padding);
  se = register_module("se", SqueezeExcitation(mid, std::max<int64_t>(1, c.in_channels / 4),
                                               Activation::kSiLU, "conv_reduce", "conv_expand"));
  pwl = register_conv_bn_act(*this, "conv_pwl", "bn3", mid, c.out_channels, 1, 1, 1, Activation::kNone, bn);
}

torch::Tensor TimmMBConvImpl::forward(torch::Tensor x) {
  torch::Tensor out = pwl.forward(se->forward(dw.forward(pw.forward(x))));
  if (!use_residual_) return out;
  out = stochastic_depth(out, drop_rate_, is_training());
  out += x;
  return out;
}

int TimmMBConvImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  int y = b.conv_bn_act(pw, input, name + ".conv_pw");
  y = b.conv_bn_act(dw, y, name + ".conv_dw");
  y = se->append_inference_ops(b, y, name + ".se");
  if (!use_residual_) return b.conv_bn_act(pwl, y, name + ".conv_pwl");
  y = b.conv_bn_act(pwl, y, name + ".conv_pwl", input);
  b.set_drop_path(y, drop_rate_);
  return y;
}

EfficientNetV2Impl::EfficientNetV2Impl(const EfficientNetV2Options& o)
    : ConvNetImpl("EfficientNetV2"), options_(o) {
  const BatchNormSettings bn = o.batch_norm();
  const bool tv = o.layout() == V2Layout::kTorchvision;
  const std::vector<V2StageConfig>& stages = o.stages();
  if (stages.empty()) throw std::invalid_argument("EfficientNetV2: no stages");
  int64_t total_blocks = 0;
  for (const auto& c : stages) total_blocks += c.repeats;
  const int64_t stem_channels = stages.front().in_channels;

  torch::nn::ModuleList features;
  if (tv) {
    auto stem = ConvNormAct(3, stem_channels, 3, 2, 1, Activation::kSiLU, bn, o.padding());
    features->push_back(stem);
    stem_ = stem->unit;
  } else {
    stem_ = register_conv_bn_act(*this, "conv_stem", "bn1", 3, stem_channels, 3, 2, 1, Activation::kSiLU, bn,
                                 o.padding());
  }
  const std::string stem_name = tv ? "features.0" : "stem";
  stages_.push_back({stem_name, {}, [this](const torch::Tensor& x) { return stem_.forward(x); }});

  torch::nn::ModuleList blocks;
  int64_t block_index = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    torch::nn::ModuleList stage;
    std::vector<std::shared_ptr<torch::nn::Module>> members;
    std::vector<std::function<torch::Tensor(const torch::Tensor&)>> forwards;
    for (int64_t r = 0; r < stages[s].repeats; ++r) {
      V2StageConfig c = stages[s];
      if (r > 0) {
        c.in_channels = c.out_channels;
        c.stride = 1;
      }
      const double drop =
          o.stochastic_depth() * static_cast<double>(block_index++) / static_cast<double>(total_blocks);
      const MBConvStageConfig m{c.expand_ratio, c.kernel, c.stride, c.in_channels, c.out_channels, 1};
      if (c.fused) {
        FusedMBConv block(c, drop, bn, o.layout(), o.padding());
        stage->push_back(block);
        forwards.emplace_back([block](const torch::Tensor& x) mutable { return block->forward(x); });
      } else if (tv) {
        MBConv block(m, drop, bn, o.padding());
        stage->push_back(block);
        forwards.emplace_back([block](const torch::Tensor& x) mutable { return block->forward(x); });
      } else {
        TimmMBConv block(m, drop, bn, o.padding());
        stage->push_back(block);
        forwards.emplace_back([block](const torch::Tensor& x) mutable { return block->forward(x); });
      }
      members.push_back(stage->ptr(static_cast<size_t>(r)));
    }
    (tv ? features : blocks)->push_back(stage);
    stages_blocks_.push_back(members);
    const std::string name = tv ? "features." + std::to_string(s + 1) : "blocks." + std::to_string(s);
    stages_.push_back({name, {stage.ptr()}, [forwards](const torch::Tensor& x) {
                         torch::Tensor y = x;
                         for (const auto& f : forwards) y = f(y);
                         return y;
                       }});
  }
  if (!tv) register_module("blocks", blocks);

  const int64_t head_in = stages.back().out_channels;
  if (tv) {
    auto head = ConvNormAct(head_in, o.head_channels(), 1, 1, 1, Activation::kSiLU, bn);
    features->push_back(head);
    head_ = head->unit;
    register_module("features", features);
    dropout_ = torch::nn::Dropout(torch::nn::DropoutOptions(o.dropout()));
    fc = torch::nn::Linear(o.head_channels(), o.num_classes());
    torch::nn::ModuleList classifier;
    classifier->push_back(dropout_);
    classifier->push_back(fc);
    register_module("classifier", classifier);
  } else {
    head_ = register_conv_bn_act(*this, "conv_head", "bn2", head_in, o.head_channels(), 1, 1, 1,
                                 Activation::kSiLU, bn);
    // timm applies its dropout functionally; registered here (no parameters, no state) so train() / eval()
    // reach it.
    dropout_ = register_module("dropout", torch::nn::Dropout(torch::nn::DropoutOptions(o.dropout())));
    fc = register_module("classifier", torch::nn::Linear(o.head_channels(), o.num_classes()));
  }
  stages_.front().modules = {stem_.conv.ptr(), stem_.bn.ptr()};
  stages_.push_back({"head", {head_.conv.ptr(), head_.bn.ptr(), fc.ptr()}, [this](const torch::Tensor& x) {
                       torch::Tensor y = head_.forward(x).mean({2, 3});
                       return fc->forward(dropout_->forward(y));
                     }});
  reset_parameters();
}

void EfficientNetV2Impl::append_inference_ops(GraphBuilder& b) const {
  const bool tv = options_.layout() == V2Layout::kTorchvision;
  int x = b.conv_bn_act(stem_, 0, tv ? "features.0" : "conv_stem");
  for (size_t s = 0; s < stages_blocks_.size(); ++s)
    x = append_block_ops(b, stages_blocks_[s], x,
                         tv ? "features." + std::to_string(s + 1) : "blocks." + std::to_string(s));
  x = b.conv_bn_act(head_, x, tv ? "features." + std::to_string(stages_blocks_.size() + 1) : "conv_head");
  x = b.global_avg_pool(x, "avgpool");
  // Dropout is the identity at inference.
  b.classifier(*fc, x, tv ? "classifier.1" : "classifier", dropout_->options.p());
}

void EfficientNetV2Impl::reset_parameters() {
  reset_efficientnet_parameters(*this, *fc);  // the NVIDIA TF2 recipe's, as V1's
}

}  // namespace convnets
