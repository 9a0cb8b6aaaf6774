#include "models/qat.h"

#include <torch/nn/functional/dropout.h>
#include <torch/nn/functional/padding.h>

#include <stdexcept>

namespace convnets {

namespace {

bool has_fused_fake_quantize(torch::ScalarType t) {
  // ATen's fused kernels multiply by a float32 1 / scale: within float32's rounding of a division, but in
  // float64 (exact checks against the simulation) the division itself is used.
  return t == torch::kFloat || t == torch::kHalf || t == torch::kBFloat16;
}

// The rounded values with the gradient `mask` (1 where passed straight through).
torch::Tensor straight_through(const torch::Tensor& x, const torch::Tensor& rounded,
                               const torch::Tensor& mask) {
  if (!x.requires_grad()) return rounded;
  return rounded.detach() + (x - x.detach()) * mask;
}

torch::Tensor batch_norm_forward(const torch::nn::BatchNorm2dImpl* bn, const torch::Tensor& x) {
  // The model is not const (QAT trains it): the graph builder only saw it through const references. The
  // zoo's BatchNorm keeps its own batch statistics (SyncBatchNorm under data parallel).
  auto* mutable_bn = const_cast<torch::nn::BatchNorm2dImpl*>(bn);
  if (auto* zoo = dynamic_cast<BatchNormImpl*>(mutable_bn)) return zoo->forward(x);
  return mutable_bn->forward(x);
}

}  // namespace

torch::Tensor fake_quantize_ste(const torch::Tensor& x, double scale, bool is_unsigned) {
  const int64_t lo = is_unsigned ? 0 : -128, hi = is_unsigned ? 255 : 127;
  if (has_fused_fake_quantize(x.scalar_type()))
    return torch::fake_quantize_per_tensor_affine(x, scale, 0, lo, hi);
  const torch::Tensor scaled = x.detach() / scale;
  const torch::Tensor q = scaled.round();
  const torch::Tensor mask = (q >= lo).logical_and(q <= hi).to(x.scalar_type());
  return straight_through(x, q.clamp(lo, hi) * scale, mask);
}

torch::Tensor fake_quantize_weights_ste(const torch::Tensor& weight, int levels) {
  std::vector<int64_t> reduce;
  for (int64_t d = 1; d < weight.dim(); ++d) reduce.push_back(d);
  torch::Tensor scale = weight.detach().abs().amax(reduce).to(torch::kDouble) / levels;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));  // a channel of zeros stays 0
  if (has_fused_fake_quantize(weight.scalar_type()))
    return torch::fake_quantize_per_channel_affine(
        weight, scale.to(torch::kFloat), torch::zeros({weight.size(0)}, weight.options().dtype(torch::kInt)),
        0, -levels, levels);
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = weight.size(0);
  const torch::Tensor s = scale.to(weight.scalar_type()).view(shape);
  const torch::Tensor rounded = (weight.detach() / s).round().clamp(-levels, levels) * s;
  return straight_through(weight, rounded, torch::ones_like(weight));
}

Int8Calibration qat_calibration(const InferenceGraph& graph, const std::map<std::string, double>& amax,
                                const std::string& weights) {
  Int8Calibration c;
  c.weights = weights;
  c.fingerprint = graph_fingerprint(graph);
  c.amax = amax;
  for (const auto& op : graph.ops)
    if (op.weight.defined()) c.weight_scales[op.name] = weight_scales(op.weight);
  return c;
}

QatForward::QatForward(const ConvNetImpl& model, const std::string& arch, std::map<std::string, double> amax,
                       int weight_levels)
    : amax_(std::move(amax)), weight_levels_(weight_levels) {
  graph_ = inference_graph(model, arch, torch::kFloat, &modules_);
  for (auto& op : graph_.ops) op.weight = op.bias = torch::Tensor();  // the modules' own are used
  const std::vector<bool> int8 = int8_values(graph_);
  unsigned_ = nonnegative_values(graph_);
  scale_.assign(static_cast<size_t>(graph_.num_values), 0.0);
  for (int v = 0; v < graph_.num_values; ++v) {
    if (!int8[static_cast<size_t>(v)]) continue;
    const std::string name = value_name(graph_, v);
    const auto it = amax_.find(name);
    if (it == amax_.end() || !(it->second > 0))
      throw std::invalid_argument("quantization-aware training: no range for the int8 value '" + name + "'");
    scale_[static_cast<size_t>(v)] = it->second / (unsigned_[static_cast<size_t>(v)] ? 255.0 : 127.0);
  }
  last_read_.assign(static_cast<size_t>(graph_.num_values), -1);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    for (int r : op_reads(graph_.ops[i])) last_read_[static_cast<size_t>(r)] = static_cast<int>(i);
  }
}

torch::Tensor QatForward::forward(const torch::Tensor& input, bool training) const {
  std::vector<torch::Tensor> v(static_cast<size_t>(graph_.num_values));
  const auto store = [&](int value, torch::Tensor y) {
    const double s = scale_[static_cast<size_t>(value)];
    v[static_cast<size_t>(value)] =
        s > 0 ? fake_quantize_ste(y, s, unsigned_[static_cast<size_t>(value)]) : y;
  };
  store(0, input);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const InferenceOp& op = graph_.ops[i];
    const OpModules& m = modules_[i];
    const torch::Tensor& x = v[static_cast<size_t>(op.input)];
    const torch::Tensor other = op.other >= 0 ? v[static_cast<size_t>(op.other)] : torch::Tensor();
    torch::Tensor y;
    switch (op.kind) {
      case InferenceOpKind::kConv: {
        const torch::Tensor in = op.same_padding ? pad_same(x, op.kernel, op.stride) : x;
        y = torch::conv2d(in, fake_quantize_weights_ste(m.conv->weight, weight_levels_), m.conv->bias,
                          op.stride, op.padding, 1, op.groups);
        if (m.bn) y = batch_norm_forward(m.bn, y);
        if (other.defined()) y = stochastic_depth(y, op.train_drop, training) + other;
        y = activate_(y, op.activation);
        break;
      }
      case InferenceOpKind::kAdd:
        y = activate_(stochastic_depth(x, op.train_drop, training) + other, op.activation);
        break;
      case InferenceOpKind::kLinear: {
        torch::Tensor in = x.flatten(1);
        if (training && op.train_drop > 0) in = torch::dropout(in, op.train_drop, true);
        y = torch::linear(in, fake_quantize_weights_ste(m.fc->weight, weight_levels_), m.fc->bias);
        break;
      }
      default:
        y = run_aten_op(op, x, other);
    }
    for (int r : op_reads(op)) {
      if (last_read_[static_cast<size_t>(r)] == static_cast<int>(i) && r != graph_.output)
        v[static_cast<size_t>(r)] = torch::Tensor();
    }
    store(op.output, y);
  }
  return v[static_cast<size_t>(graph_.output)];
}

}  // namespace convnets
