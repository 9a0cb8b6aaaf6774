#include "models/efficientnet.h"

#include <torch/nn/init.h>

#include <cmath>

namespace convnets {

const std::vector<MBConvStageConfig>& efficientnet_b0_stages() {
  // expand, kernel, stride, in, out, repeats (docs/recipes.md, TF order rearranged)
  static const std::vector<MBConvStageConfig> stages = {
      {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
      {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
  };
  return stages;
}

int64_t round_filters(double channels, double width_mult) {
  return make_divisible(channels * width_mult, 8, 0.9);
}

int64_t round_repeats(int64_t repeats, double depth_mult) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(repeats) * depth_mult));
}

MBConvImpl::MBConvImpl(const MBConvStageConfig& c, double drop_rate, const BatchNormSettings& bn,
                       Padding padding)
    : drop_rate_(drop_rate), use_residual_(c.stride == 1 && c.in_channels == c.out_channels) {
  const int64_t expanded =
      round_filters(static_cast<double>(c.in_channels), static_cast<double>(c.expand_ratio));
  if (expanded != c.in_channels) {
    expand = ConvNormAct(c.in_channels, expanded, 1, 1, 1, Activation::kSiLU, bn);
    block->push_back(expand);
  }
  depthwise = ConvNormAct(expanded, expanded, c.kernel, c.stride, expanded, Activation::kSiLU, bn, padding);
  se = SqueezeExcitation(expanded, std::max<int64_t>(1, c.in_channels / 4));
  project = ConvNormAct(expanded, c.out_channels, 1, 1, 1, Activation::kNone, bn);
  block->push_back(depthwise);
  block->push_back(se);
  block->push_back(project);
  register_module("block", block);
}

torch::Tensor MBConvImpl::forward(torch::Tensor x) {
  torch::Tensor out = expand.is_empty() ? x : expand->forward(x);
  out = project->forward(se->forward(depthwise->forward(out)));
  if (!use_residual_) return out;
  out = stochastic_depth(out, drop_rate_, is_training());
  out += x;
  return out;
}

int MBConvImpl::append_inference_ops(GraphBuilder& b, int input, const std::string& name) const {
  const std::string prefix = name + ".block.";
  int y = input;
  int k = 0;
  if (!expand.is_empty()) y = b.conv_bn_act(expand->unit, y, prefix + std::to_string(k++));
  y = b.conv_bn_act(depthwise->unit, y, prefix + std::to_string(k++));
  y = se->append_inference_ops(b, y, prefix + std::to_string(k++));
  if (!use_residual_) return b.conv_bn_act(project->unit, y, prefix + std::to_string(k));
  y = b.conv_bn_act(project->unit, y, prefix + std::to_string(k), input);
  b.set_drop_path(y, drop_rate_);  // stochastic depth is the identity at inference
  return y;
}

EfficientNetImpl::EfficientNetImpl(const EfficientNetOptions& o) : ConvNetImpl("EfficientNet"), options_(o) {
  const BatchNormSettings bn = o.batch_norm();
  std::vector<MBConvStageConfig> stages;
  int64_t total_blocks = 0;
  for (auto c : efficientnet_b0_stages()) {
    c.in_channels = round_filters(static_cast<double>(c.in_channels), o.width_mult());
    c.out_channels = round_filters(static_cast<double>(c.out_channels), o.width_mult());
    c.repeats = round_repeats(c.repeats, o.depth_mult());
    total_blocks += c.repeats;
    stages.push_back(c);
  }

  const int64_t stem_channels = stages.front().in_channels;
  auto stem = ConvNormAct(3, stem_channels, 3, 2, 1, Activation::kSiLU, bn);
  features->push_back(stem);
  stages_.push_back(
      {"stem", {stem.ptr()}, [stem](const torch::Tensor& x) mutable { return stem->forward(x); }});

  int64_t block_index = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    torch::nn::ModuleList stage;
    std::vector<MBConv> blocks;
    MBConvStageConfig c = stages[s];
    for (int64_t r = 0; r < stages[s].repeats; ++r) {
      if (r > 0) {
        c.in_channels = c.out_channels;
        c.stride = 1;
      }
      const double drop =
          o.stochastic_depth() * static_cast<double>(block_index) / static_cast<double>(total_blocks);
      blocks.emplace_back(c, drop, bn);
      stage->push_back(blocks.back());
      ++block_index;
    }
    features->push_back(stage);
    stages_.push_back(
        {"features." + std::to_string(s + 1), {stage.ptr()}, [blocks](const torch::Tensor& x) mutable {
           torch::Tensor y = x;
           for (auto& block : blocks) y = block->forward(y);
           return y;
         }});
  }

  const int64_t head_in = stages.back().out_channels;
  const int64_t head_channels = 4 * head_in;  // = round_filters(1280, width)
  auto head = ConvNormAct(head_in, head_channels, 1, 1, 1, Activation::kSiLU, bn);
  features->push_back(head);
  register_module("features", features);

  dropout = torch::nn::Dropout(torch::nn::DropoutOptions(o.dropout()));
  fc = torch::nn::Linear(head_channels, o.num_classes());
  classifier->push_back(dropout);
  classifier->push_back(fc);
  register_module("classifier", classifier);
  stages_.push_back({"head", {head.ptr(), fc.ptr()}, [this, head](const torch::Tensor& x) mutable {
                       torch::Tensor y = head->forward(x).mean({2, 3});
                       return fc->forward(dropout->forward(y));
                     }});
  reset_parameters();
}

void EfficientNetImpl::append_inference_ops(GraphBuilder& b) const {
  const size_t last = features->size() - 1;
  int x = b.conv_bn_act(features->ptr(0)->as<ConvNormActImpl>()->unit, 0, "features.0");
  for (size_t s = 1; s < last; ++s)
    x = append_block_ops(b, features->ptr(s)->as<torch::nn::ModuleListImpl>()->children(), x,
                         "features." + std::to_string(s));
  x = b.conv_bn_act(features->ptr(last)->as<ConvNormActImpl>()->unit, x, "features." + std::to_string(last));
  x = b.global_avg_pool(x, "avgpool");
  b.classifier(*fc, x, "classifier.1", dropout->options.p());  // dropout is the identity at inference
}

void reset_efficientnet_parameters(torch::nn::Module& model, torch::nn::LinearImpl& fc) {
  torch::NoGradGuard no_grad;
  for (auto& module : model.modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2dImpl>()) {
      // VarianceScaling(2.0, fan_out, truncated normal) on every conv, SE convs included; biases zero.
      variance_scaling_truncated_(conv->weight, 2.0,
                                  tf_fan(conv->weight, conv->options.groups(), FanMode::kFanOut));
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* norm = module->as<torch::nn::BatchNorm2dImpl>()) {
      norm->reset_parameters();
    }
  }
  // Dense: VarianceScaling(1/3, fan_out, uniform) = U(+-sqrt(1/num_classes)).
  const double limit = std::sqrt(1.0 / static_cast<double>(fc.options.out_features()));
  fc.weight.uniform_(-limit, limit);
  fc.bias.zero_();
}

void EfficientNetImpl::reset_parameters() {
  reset_efficientnet_parameters(*this, *fc);
}

}  // namespace convnets
