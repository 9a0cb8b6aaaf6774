#include "models/inference_graph.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <stdexcept>
#include <variant>

#include "models/efficientnet.h"
#include "models/resnet.h"

namespace convnets {
namespace {

// Appends ops, numbering their outputs.
class GraphBuilder {
 public:
  GraphBuilder(InferenceGraph& g, torch::ScalarType dtype) : g_(g), dtype_(dtype) {}

  // conv -> BatchNorm folded: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) +
  // beta, computed in float64 and rounded once.
  int conv(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl* bn, int input, Activation act,
           const std::string& name, int residual = -1) {
    torch::NoGradGuard no_grad;
    const auto& o = conv.options;
    if (o.kernel_size()->at(0) != o.kernel_size()->at(1) || o.stride()->at(0) != o.stride()->at(1) ||
        o.dilation()->at(0) != 1 || o.dilation()->at(1) != 1)
      throw std::invalid_argument(name + ": only square kernels and strides without dilation fold");
    const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (!padding || (*padding)->at(0) != (*padding)->at(1))
      throw std::invalid_argument(name + ": only explicit symmetric padding folds");
    torch::Tensor w = conv.weight.detach().to(torch::kCPU, torch::kDouble).contiguous();
    torch::Tensor b = conv.bias.defined() ? conv.bias.detach().to(torch::kCPU, torch::kDouble)
                                          : torch::zeros({w.size(0)}, torch::kDouble);
    if (bn) {
      const torch::Tensor scale =
          bn->weight.detach().to(torch::kCPU, torch::kDouble) *
          torch::rsqrt(bn->running_var.detach().to(torch::kCPU, torch::kDouble) + bn->options.eps());
      w = w * scale.view({-1, 1, 1, 1});
      b = (b - bn->running_mean.detach().to(torch::kCPU, torch::kDouble)) * scale +
          bn->bias.detach().to(torch::kCPU, torch::kDouble);
    }
    InferenceOp op;
    op.kind = InferenceOpKind::kConv;
    op.weight = w.to(dtype_).contiguous();
    op.bias = b.to(dtype_).contiguous();
    op.kernel = o.kernel_size()->at(0);
    op.stride = o.stride()->at(0);
    op.padding = (*padding)->at(0);
    op.groups = o.groups();
    op.activation = act;
    op.other = residual;
    op.name = name;
    return add(std::move(op), input);
  }

  int conv_norm_act(const ConvNormActImpl& m, int input, const std::string& name, int residual = -1) {
    return conv(*m.conv, m.bn.get(), input, m.activation(), name, residual);
  }

  int simple(InferenceOpKind kind, int input, const std::string& name, int other = -1) {
    InferenceOp op;
    op.kind = kind;
    op.other = other;
    op.name = name;
    return add(std::move(op), input);
  }

  int max_pool(int input, int64_t kernel, int64_t stride, int64_t padding, const std::string& name) {
    InferenceOp op;
    op.kind = InferenceOpKind::kMaxPool;
    op.kernel = kernel;
    op.stride = stride;
    op.padding = padding;
    op.name = name;
    return add(std::move(op), input);
  }

  int linear(const torch::nn::LinearImpl& fc, int input, const std::string& name) {
    InferenceOp op;
    op.kind = InferenceOpKind::kLinear;
    op.weight = fc.weight.detach().to(torch::kCPU, dtype_).contiguous();
    op.bias = fc.bias.detach().to(torch::kCPU, dtype_).contiguous();
    op.name = name;
    return add(std::move(op), input);
  }

 private:
  int add(InferenceOp op, int input) {
    op.input = input;
    op.output = g_.num_values++;
    g_.ops.push_back(std::move(op));
    return g_.ops.back().output;
  }
  InferenceGraph& g_;
  torch::ScalarType dtype_;
};

void resnet_graph(const ResNetImpl& m, GraphBuilder& b, InferenceGraph& g) {
  int x = b.conv(*m.conv1, m.bn1.get(), 0, Activation::kReLU, "conv1");
  x = b.max_pool(x, 3, 2, 1, "maxpool");
  for (size_t s = 0; s < m.layers.size(); ++s) {
    int index = 0;
    for (const auto& block : *m.layers[s]) {
      const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(index++);
      if (const auto* bb = block.ptr()->as<BasicBlockImpl>()) {
        const int shortcut = bb->down_conv.is_empty() ? x
                                                      : b.conv(*bb->down_conv, bb->down_bn.get(), x,
                                                               Activation::kNone, name + ".downsample.0");
        const int y = b.conv(*bb->conv1, bb->bn1.get(), x, Activation::kReLU, name + ".conv1");
        x = b.conv(*bb->conv2, bb->bn2.get(), y, Activation::kReLU, name + ".conv2", shortcut);
      } else if (const auto* bt = block.ptr()->as<BottleneckImpl>()) {
        const int shortcut = bt->down_conv.is_empty() ? x
                                                      : b.conv(*bt->down_conv, bt->down_bn.get(), x,
                                                               Activation::kNone, name + ".downsample.0");
        int y = b.conv(*bt->conv1, bt->bn1.get(), x, Activation::kReLU, name + ".conv1");
        y = b.conv(*bt->conv2, bt->bn2.get(), y, Activation::kReLU, name + ".conv2");
        x = b.conv(*bt->conv3, bt->bn3.get(), y, Activation::kReLU, name + ".conv3", shortcut);
      } else {
        throw std::invalid_argument(name + ": not a ResNet block");
      }
    }
  }
  x = b.simple(InferenceOpKind::kGlobalAvgPool, x, "avgpool");
  g.output = b.linear(*m.fc, x, "fc");
}

void efficientnet_graph(const EfficientNetImpl& m, GraphBuilder& b, InferenceGraph& g) {
  const auto& features = *m.features;
  const size_t last = features.size() - 1;
  int x = b.conv_norm_act(*features[0]->as<ConvNormActImpl>(), 0, "features.0");
  for (size_t s = 1; s < last; ++s) {
    const auto* stage = features[s]->as<torch::nn::ModuleListImpl>();
    for (size_t i = 0; i < stage->size(); ++i) {
      const auto* block = stage->ptr(i)->as<MBConvImpl>();
      const std::string name = "features." + std::to_string(s) + "." + std::to_string(i) + ".block";
      int y = x;
      int k = 0;
      if (!block->expand.is_empty()) y = b.conv_norm_act(*block->expand, y, name + "." + std::to_string(k++));
      y = b.conv_norm_act(*block->depthwise, y, name + "." + std::to_string(k++));
      // Squeeze-excitation: GAP -> conv (fc1) -> SiLU -> conv (fc2) -> sigmoid -> scale.
      const std::string se = name + "." + std::to_string(k++);
      int gate = b.simple(InferenceOpKind::kGlobalAvgPool, y, se + ".avgpool");
      gate = b.conv(*block->se->fc1, nullptr, gate, Activation::kSiLU, se + ".fc1");
      gate = b.conv(*block->se->fc2, nullptr, gate, Activation::kSigmoid, se + ".fc2");
      y = b.simple(InferenceOpKind::kMul, y, se + ".scale", gate);
      // Stochastic depth is the identity at inference.
      x = b.conv_norm_act(*block->project, y, name + "." + std::to_string(k), block->has_residual() ? x : -1);
    }
  }
  x = b.conv_norm_act(*features[last]->as<ConvNormActImpl>(), x, "features." + std::to_string(last));
  x = b.simple(InferenceOpKind::kGlobalAvgPool, x, "avgpool");
  g.output = b.linear(*m.fc, x, "classifier.1");  // dropout is the identity at inference
}

}  // namespace

InferenceGraph inference_graph(const ConvNetImpl& model, const std::string& arch, torch::ScalarType dtype) {
  InferenceGraph g;
  g.arch = arch;
  GraphBuilder builder(g, dtype);
  if (const auto* r = dynamic_cast<const ResNetImpl*>(&model)) {
    resnet_graph(*r, builder, g);
    g.num_classes = r->fc->options.out_features();
  } else if (const auto* e = dynamic_cast<const EfficientNetImpl*>(&model)) {
    efficientnet_graph(*e, builder, g);
    g.num_classes = e->fc->options.out_features();
  } else {
    throw std::invalid_argument("inference_graph: '" + arch + "' is neither a ResNet nor an EfficientNet");
  }
  return g;
}

torch::Tensor run_inference_graph(const InferenceGraph& g, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  const auto options = input.options();
  std::vector<torch::Tensor> v(static_cast<size_t>(g.num_values));
  v[0] = input;
  for (const auto& op : g.ops) {
    const torch::Tensor& x = v[static_cast<size_t>(op.input)];
    torch::Tensor y;
    switch (op.kind) {
      case InferenceOpKind::kConv:
        y = torch::conv2d(x, op.weight.to(options), op.bias.to(options), op.stride, op.padding, 1, op.groups);
        if (op.other >= 0) y = y + v[static_cast<size_t>(op.other)];
        y = activate_(y, op.activation);
        break;
      case InferenceOpKind::kMaxPool:
        y = torch::max_pool2d(x, op.kernel, op.stride, op.padding);
        break;
      case InferenceOpKind::kGlobalAvgPool:
        y = x.mean({2, 3}, /*keepdim=*/true);
        break;
      case InferenceOpKind::kMul:
        y = x * v[static_cast<size_t>(op.other)];
        break;
      case InferenceOpKind::kLinear:
        y = torch::linear(x.flatten(1), op.weight.to(options), op.bias.to(options));
        break;
    }
    v[static_cast<size_t>(op.output)] = y;
  }
  return v[static_cast<size_t>(g.output)];
}

}  // namespace convnets
