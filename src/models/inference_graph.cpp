#include "models/inference_graph.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <stdexcept>
#include <variant>

namespace convnets {

int GraphBuilder::conv(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl* bn, int input,
                       Activation act, const std::string& name, int residual, bool same_padding) {
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
  op.same_padding = same_padding;
  op.groups = o.groups();
  op.activation = act;
  op.other = residual;
  op.name = name;
  return append(std::move(op), input);
}

int GraphBuilder::max_pool(int input, int64_t kernel, int64_t stride, int64_t padding,
                           const std::string& name) {
  InferenceOp op;
  op.kind = InferenceOpKind::kMaxPool;
  op.kernel = kernel;
  op.stride = stride;
  op.padding = padding;
  op.name = name;
  return append(std::move(op), input);
}

int GraphBuilder::global_avg_pool(int input, const std::string& name) {
  InferenceOp op;
  op.kind = InferenceOpKind::kGlobalAvgPool;
  op.name = name;
  return append(std::move(op), input);
}

int GraphBuilder::mul(int input, int other, const std::string& name) {
  InferenceOp op;
  op.kind = InferenceOpKind::kMul;
  op.other = other;
  op.name = name;
  return append(std::move(op), input);
}

int GraphBuilder::add(int input, int other, Activation act, const std::string& name) {
  InferenceOp op;
  op.kind = InferenceOpKind::kAdd;
  op.other = other;
  op.activation = act;
  op.name = name;
  return append(std::move(op), input);
}

void GraphBuilder::classifier(const torch::nn::LinearImpl& fc, int input, const std::string& name) {
  InferenceOp op;
  op.kind = InferenceOpKind::kLinear;
  op.weight = fc.weight.detach().to(torch::kCPU, dtype_).contiguous();
  op.bias = fc.bias.detach().to(torch::kCPU, dtype_).contiguous();
  op.name = name;
  g_.output = append(std::move(op), input);
  g_.num_classes = fc.options.out_features();
}

int GraphBuilder::append(InferenceOp op, int input) {
  op.input = input;
  op.output = g_.num_values++;
  g_.ops.push_back(std::move(op));
  return g_.ops.back().output;
}

int append_block_ops(GraphBuilder& b, const std::vector<std::shared_ptr<torch::nn::Module>>& blocks,
                     int input, const std::string& prefix) {
  int x = input;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string name = prefix + "." + std::to_string(i);
    const auto* block = dynamic_cast<const InferenceBlock*>(blocks[i].get());
    if (!block) throw std::invalid_argument(name + ": a block without inference ops");
    x = block->append_inference_ops(b, x, name);
  }
  return x;
}

InferenceGraph inference_graph(const ConvNetImpl& model, const std::string& arch, torch::ScalarType dtype) {
  InferenceGraph g;
  g.arch = arch;
  GraphBuilder builder(g, dtype);
  model.append_inference_ops(builder);
  if (g.ops.empty() || g.ops.back().kind != InferenceOpKind::kLinear)
    throw std::logic_error("inference_graph: '" + arch + "' did not end with its classifier");
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
        y = torch::conv2d(op.same_padding ? pad_same(x, op.kernel, op.stride) : x, op.weight.to(options),
                          op.bias.to(options), op.stride, op.padding, 1, op.groups);
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
      case InferenceOpKind::kAdd:
        y = activate_(x + v[static_cast<size_t>(op.other)], op.activation);
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
