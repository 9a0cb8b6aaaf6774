#include "cpu/fast_inference.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <stdexcept>
#include <string_view>

#include "models/buffer_plan.h"

namespace convnets {
namespace {

using ScalarList = c10::List<std::optional<at::Scalar>>;

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&,
                                          const std::optional<at::Tensor>&, c10::IntArrayRef,
                                          c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view,
                                          ScalarList, std::optional<std::string_view>)>&
conv_pointwise() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_convolution_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view,
                            ScalarList, std::optional<std::string_view>)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
    c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, int64_t, std::string_view,
    std::optional<at::Scalar>, std::optional<std::string_view>, ScalarList, std::optional<std::string_view>)>&
conv_pointwise_binary() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_convolution_pointwise", "binary")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                            const std::optional<at::Tensor>&, c10::IntArrayRef, c10::IntArrayRef,
                            c10::IntArrayRef, int64_t, std::string_view, std::optional<at::Scalar>,
                            std::optional<std::string_view>, ScalarList, std::optional<std::string_view>)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, c10::IntArrayRef, c10::IntArrayRef,
                                          c10::IntArrayRef, int64_t, at::OptionalIntArrayRef)>&
reorder_conv_weight() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkldnn::_reorder_convolution_weight", "")
                             .typed<at::Tensor(const at::Tensor&, c10::IntArrayRef, c10::IntArrayRef,
                                               c10::IntArrayRef, int64_t, at::OptionalIntArrayRef)>();
  return op;
}

const c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&,
                                          const std::optional<at::Tensor>&, std::string_view, ScalarList,
                                          std::optional<std::string_view>)>&
linear_pointwise() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            std::string_view, ScalarList, std::optional<std::string_view>)>();
  return op;
}

std::string_view unary_attr(Activation act) {
  switch (act) {
    case Activation::kReLU:
      return "relu";
    case Activation::kSiLU:
      return "swish";
    case Activation::kSigmoid:
      return "sigmoid";
    case Activation::kNone:
      break;
  }
  return "none";
}

}  // namespace

bool fast_inference_available() {
  static const bool available = [] {
    if (!at::hasMKLDNN()) return false;
    return c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", ""}).has_value() &&
           c10::Dispatcher::singleton()
               .findSchema({"mkldnn::_convolution_pointwise", "binary"})
               .has_value() &&
           c10::Dispatcher::singleton().findSchema({"mkldnn::_reorder_convolution_weight", ""}).has_value() &&
           c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""}).has_value();
  }();
  return available;
}

bool fast_inference_bf16_supported() {
  static const bool supported = [] {
    auto op = c10::Dispatcher::singleton().findSchema({"mkldnn::_is_mkldnn_bf16_supported", ""});
    return op.has_value() && op->typed<bool()>().call();
  }();
  return supported;
}

FastInference::FastInference(const InferenceGraph& graph, torch::ScalarType dtype)
    : graph_(graph), dtype_(dtype) {
  if (!fast_inference_available())
    throw std::runtime_error("the fused CPU inference kernels (oneDNN) are not available in this build");
  if (dtype != torch::kFloat && dtype != torch::kBFloat16)
    throw std::invalid_argument("fast inference runs float32 or bfloat16");
  if (dtype == torch::kBFloat16 && !fast_inference_bf16_supported())
    throw std::runtime_error("this CPU has no native bfloat16 (AVX512-BF16 / AMX): run float32");
  // Which values are 1x1 maps: the outputs of global pooling and what is computed from them alone.
  std::vector<bool> one_by_one(static_cast<size_t>(graph_.num_values), false);
  convs_.resize(graph_.ops.size());
  last_read_ = last_reads(buffer_uses(graph_), graph_.num_values);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const InferenceOp& op = graph_.ops[i];
    if (op.kind == InferenceOpKind::kGlobalAvgPool) one_by_one[static_cast<size_t>(op.output)] = true;
    if (op.kind == InferenceOpKind::kLinear) {
      fc_weight_ = op.weight.to(dtype_).contiguous();
      fc_bias_ = op.bias.to(dtype_).contiguous();
    }
    if (op.kind != InferenceOpKind::kConv) continue;
    Conv& c = convs_[i];
    c.op = &op;
    c.weight = op.weight.to(dtype_).contiguous();
    c.bias = op.bias.to(dtype_).contiguous();
    if (op.kernel == 1 && op.groups == 1 && op.padding == 0 && one_by_one[static_cast<size_t>(op.input)] &&
        op.other < 0) {
      c.as_linear = true;
      c.linear_weight = c.weight.flatten(1).contiguous();  // [out, in]
      one_by_one[static_cast<size_t>(op.output)] = true;
    }
  }
}

const torch::Tensor& FastInference::packed_weight(Conv& conv, const torch::Tensor& x) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  auto it = conv.packed.find(shape);
  if (it == conv.packed.end()) {
    const InferenceOp& op = *conv.op;
    const std::vector<int64_t> padding{op.padding, op.padding}, stride{op.stride, op.stride}, dilation{1, 1};
    // oneDNN's blocked layout for this input shape, chosen once (prepacking).
    it = conv.packed
             .emplace(shape, reorder_conv_weight().call(conv.weight, padding, stride, dilation, op.groups,
                                                        c10::IntArrayRef(shape)))
             .first;
  }
  return it->second;
}

torch::Tensor FastInference::forward(const torch::Tensor& input) {
  c10::InferenceMode inference;
  std::vector<torch::Tensor> v(static_cast<size_t>(graph_.num_values));
  v[0] = input.to(dtype_).contiguous(torch::MemoryFormat::ChannelsLast);
  const ScalarList no_scalars;
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const InferenceOp& op = graph_.ops[i];
    // TensorFlow's "same" padding: the input padded first (a separate op), the convolution without padding.
    const torch::Tensor x = op.same_padding ? pad_same(v[static_cast<size_t>(op.input)], op.kernel, op.stride)
                                            : v[static_cast<size_t>(op.input)];
    torch::Tensor y;
    switch (op.kind) {
      case InferenceOpKind::kConv: {
        Conv& c = convs_[i];
        if (c.as_linear) {
          y = linear_pointwise()
                  .call(x.flatten(1), c.linear_weight, c.bias, unary_attr(op.activation), no_scalars,
                        std::nullopt)
                  .view({x.size(0), -1, 1, 1});
          break;
        }
        const std::vector<int64_t> padding{op.padding, op.padding}, stride{op.stride, op.stride},
            dilation{1, 1};
        const torch::Tensor& w = packed_weight(c, x);
        const torch::Tensor& unpadded = v[static_cast<size_t>(op.input)];
        if (op.other >= 0 &&
            op_output_size(op, unpadded.size(2)) * op_output_size(op, unpadded.size(3)) == 1) {
          // oneDNN cannot create the binary post-op's memory for a 1x1 map ("could not create a memory",
          // torch 2.11): convolution, then the residual add and the activation as separate ops.
          y = conv_pointwise().call(x, w, c.bias, padding, stride, dilation, op.groups, "none", no_scalars,
                                    std::nullopt);
          y.add_(v[static_cast<size_t>(op.other)]);
          activate_(y, op.activation);
        } else if (op.other >= 0) {
          // Convolution, + residual, then the activation: one kernel (oneDNN's sum / binary post-ops).
          y = conv_pointwise_binary().call(
              x, v[static_cast<size_t>(op.other)].contiguous(torch::MemoryFormat::ChannelsLast), w, c.bias,
              padding, stride, dilation, op.groups, "add", std::nullopt,
              op.activation == Activation::kNone ? std::nullopt
                                                 : std::optional<std::string_view>(unary_attr(op.activation)),
              no_scalars, std::nullopt);
        } else {
          y = conv_pointwise().call(x, w, c.bias, padding, stride, dilation, op.groups,
                                    unary_attr(op.activation), no_scalars, std::nullopt);
        }
        break;
      }
      case InferenceOpKind::kLinear:
        y = linear_pointwise().call(x.flatten(1), fc_weight_, fc_bias_, "none", no_scalars, std::nullopt);
        break;
      default:
        y = run_aten_op(op, x, op.other >= 0 ? v[static_cast<size_t>(op.other)] : torch::Tensor());
    }
    v[static_cast<size_t>(op.output)] = std::move(y);
    // Values nobody reads again are released at once (the graph is a chain with short skips).
    for (const int read : op_reads(op))
      if (last_read_[static_cast<size_t>(read)] == static_cast<int>(i))
        v[static_cast<size_t>(read)] = torch::Tensor();
  }
  return v[static_cast<size_t>(graph_.output)].to(torch::kFloat);
}

}  // namespace convnets
