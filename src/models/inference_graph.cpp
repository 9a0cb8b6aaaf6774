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
  return append(std::move(op), input, {.conv = &conv, .bn = bn});
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

void GraphBuilder::classifier(const torch::nn::LinearImpl& fc, int input, const std::string& name,
                              double dropout) {
  InferenceOp op;
  op.kind = InferenceOpKind::kLinear;
  op.weight = fc.weight.detach().to(torch::kCPU, dtype_).contiguous();
  op.bias = fc.bias.detach().to(torch::kCPU, dtype_).contiguous();
  op.name = name;
  op.train_drop = dropout;
  g_.output = append(std::move(op), input, {.fc = &fc});
  g_.num_classes = fc.options.out_features();
}

void GraphBuilder::set_drop_path(int value, double p) {
  for (auto& op : g_.ops) {
    if (op.output != value) continue;
    if ((op.kind != InferenceOpKind::kConv && op.kind != InferenceOpKind::kAdd) || op.other < 0)
      throw std::logic_error(op.name + ": stochastic depth on an op without a residual");
    op.train_drop = p;
    return;
  }
  throw std::logic_error("set_drop_path: no op makes value " + std::to_string(value));
}

int GraphBuilder::append(InferenceOp op, int input, OpModules modules) {
  op.input = input;
  op.output = g_.num_values++;
  g_.ops.push_back(std::move(op));
  if (modules_) modules_->push_back(modules);
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

InferenceGraph inference_graph(const ConvNetImpl& model, const std::string& arch, torch::ScalarType dtype,
                               std::vector<OpModules>* modules) {
  InferenceGraph g;
  g.arch = arch;
  if (modules) modules->clear();
  GraphBuilder builder(g, dtype, modules);
  model.append_inference_ops(builder);
  if (g.ops.empty() || g.ops.back().kind != InferenceOpKind::kLinear)
    throw std::logic_error("inference_graph: '" + arch + "' did not end with its classifier");
  return g;
}

torch::Tensor run_aten_op(const InferenceOp& op, const torch::Tensor& x, const torch::Tensor& other) {
  switch (op.kind) {
    case InferenceOpKind::kMaxPool:
      return torch::max_pool2d(x, op.kernel, op.stride, op.padding);
    case InferenceOpKind::kGlobalAvgPool:
      return x.mean({2, 3}, /*keepdim=*/true);
    case InferenceOpKind::kMul:
      return x * other;
    case InferenceOpKind::kAdd:
      return activate_(x + other, op.activation);
    case InferenceOpKind::kConv:
    case InferenceOpKind::kLinear:
      break;
  }
  throw std::logic_error(op.name + ": a convolution or classifier is not an ATen op here");
}

torch::Tensor run_inference_graph(const InferenceGraph& g, const torch::Tensor& input,
                                  const ValueHook& on_value) {
  torch::NoGradGuard no_grad;
  const auto options = input.options();
  std::vector<int> last_read(static_cast<size_t>(g.num_values), -1);
  for (size_t i = 0; i < g.ops.size(); ++i) {
    for (int r : op_reads(g.ops[i])) last_read[static_cast<size_t>(r)] = static_cast<int>(i);
  }
  std::vector<torch::Tensor> v(static_cast<size_t>(g.num_values));
  v[0] = on_value ? on_value(0, input) : input;
  for (size_t i = 0; i < g.ops.size(); ++i) {
    const InferenceOp& op = g.ops[i];
    const torch::Tensor& x = v[static_cast<size_t>(op.input)];
    const torch::Tensor other = op.other >= 0 ? v[static_cast<size_t>(op.other)] : torch::Tensor();
    torch::Tensor y;
    switch (op.kind) {
      case InferenceOpKind::kConv:
        y = torch::conv2d(op.same_padding ? pad_same(x, op.kernel, op.stride) : x, op.weight.to(options),
                          op.bias.to(options), op.stride, op.padding, 1, op.groups);
        if (other.defined()) y = y + other;
        y = activate_(y, op.activation);
        break;
      case InferenceOpKind::kLinear:
        y = torch::linear(x.flatten(1), op.weight.to(options), op.bias.to(options));
        break;
      default:
        y = run_aten_op(op, x, other);
    }
    for (int r : op_reads(op)) {  // values no later op reads are freed as the pass goes
      if (last_read[static_cast<size_t>(r)] == static_cast<int>(i) && r != g.output)
        v[static_cast<size_t>(r)] = torch::Tensor();
    }
    v[static_cast<size_t>(op.output)] = on_value ? on_value(op.output, y) : y;
  }
  return v[static_cast<size_t>(g.output)];
}

std::pair<int64_t, int64_t> op_padding(const InferenceOp& op, int64_t in) {
  if (op.same_padding) return same_padding(in, op.kernel, op.stride);
  return {op.padding, op.padding};
}

int64_t op_output_size(const InferenceOp& op, int64_t in) {
  const auto [before, after] = op_padding(op, in);
  return (in + before + after - op.kernel) / op.stride + 1;
}

std::vector<ValueShape> value_shapes(const InferenceGraph& g, const ValueShape& input) {
  std::vector<ValueShape> shapes(static_cast<size_t>(g.num_values));
  shapes[0] = input;
  for (const InferenceOp& op : g.ops) {
    const ValueShape& x = shapes[static_cast<size_t>(op.input)];
    ValueShape y = x;
    switch (op.kind) {
      case InferenceOpKind::kConv:
        if (op.weight.size(1) * op.groups != x.c)
          throw std::invalid_argument("the input has " + std::to_string(x.c) + " channels, the model takes " +
                                      std::to_string(op.weight.size(1) * op.groups));
        y = {x.n, op.weight.size(0), op_output_size(op, x.h), op_output_size(op, x.w)};
        break;
      case InferenceOpKind::kMaxPool:
        y = {x.n, x.c, op_output_size(op, x.h), op_output_size(op, x.w)};
        break;
      case InferenceOpKind::kGlobalAvgPool:
        y = {x.n, x.c, 1, 1};
        break;
      case InferenceOpKind::kMul:
      case InferenceOpKind::kAdd:
        break;
      case InferenceOpKind::kLinear:
        if (x.h != 1 || x.w != 1)
          throw std::invalid_argument(op.name + ": the classifier's input is " + std::to_string(x.h) + "x" +
                                      std::to_string(x.w) + ", not the pooled 1x1 map");
        y = {x.n, op.weight.size(0), 1, 1};
        break;
    }
    if (y.h < 1 || y.w < 1)
      throw std::invalid_argument(op.name + ": a " + std::to_string(x.h) + "x" + std::to_string(x.w) +
                                  " map is too small for it");
    shapes[static_cast<size_t>(op.output)] = y;
  }
  return shapes;
}

std::vector<int> op_reads(const InferenceOp& op) {
  if (op.other >= 0) return {op.input, op.other};
  return {op.input};
}

}  // namespace convnets
