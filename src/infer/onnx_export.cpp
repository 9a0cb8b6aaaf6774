#include "infer/onnx_export.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <stdexcept>

#include "models/quantization.h"
#include "util/protobuf_writer.h"

namespace convnets {
namespace {

// onnx.proto field numbers and enums (ONNX 1.12+: IR version 8, opset 17).
constexpr int64_t kIrVersion = 8, kOpset = 17;
constexpr int kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7,
              kFloat16 = 10;                                 // TensorProto.DataType
constexpr int kAttrInt = 2, kAttrString = 3, kAttrInts = 7;  // AttributeProto.AttributeType

std::string tensor_proto(const std::string& name, const torch::Tensor& t, bool fp16) {
  const torch::Tensor c = t.to(fp16 ? torch::kHalf : t.scalar_type()).contiguous();
  std::string out;
  for (int64_t d : c.sizes()) proto::put_int(out, 1, d);  // dims
  int type = fp16 ? kFloat16 : kFloat;
  switch (c.scalar_type()) {
    case torch::kLong:
      type = kInt64;
      break;
    case torch::kInt:
      type = kInt32;
      break;
    case torch::kChar:
      type = kInt8;
      break;
    case torch::kByte:
      type = kUint8;
      break;
    default:
      break;
  }
  proto::put_int(out, 2, type);
  proto::put_bytes(out, 8, name);
  proto::put_bytes(out, 9, std::string_view(static_cast<const char*>(c.data_ptr()), c.nbytes()));  // raw_data
  return out;
}

std::string attribute_int(const std::string& name, int64_t v) {
  std::string a;
  proto::put_bytes(a, 1, name);
  proto::put_int(a, 3, v);
  proto::put_int(a, 20, kAttrInt);
  return a;
}

std::string attribute_string(const std::string& name, const std::string& v) {
  std::string a;
  proto::put_bytes(a, 1, name);
  proto::put_bytes(a, 4, v);
  proto::put_int(a, 20, kAttrString);
  return a;
}

std::string attribute_ints(const std::string& name, const std::vector<int64_t>& v) {
  std::string a;
  proto::put_bytes(a, 1, name);
  for (int64_t x : v) proto::put_int(a, 8, x);
  proto::put_int(a, 20, kAttrInts);
  return a;
}

// elem_type and shape; a negative dimension is the symbolic batch dimension.
std::string value_info(const OnnxTensorInfo& t) {
  std::string shape;
  for (int64_t d : t.dims) {
    std::string dim;
    if (d < 0)
      proto::put_bytes(dim, 2, "batch");  // dim_param
    else
      proto::put_int(dim, 1, d);  // dim_value
    proto::put_bytes(shape, 1, dim);
  }
  std::string tensor_type;
  proto::put_int(tensor_type, 1, t.int64 ? kInt64 : kFloat);
  proto::put_bytes(tensor_type, 2, shape);
  std::string type;
  proto::put_bytes(type, 1, tensor_type);
  std::string info;
  proto::put_bytes(info, 1, t.name);
  proto::put_bytes(info, 2, type);
  return info;
}

class OnnxGraph {
 public:
  explicit OnnxGraph(bool fp16) : fp16_(fp16) {}

  void node(const std::string& op_type, const std::vector<std::string>& inputs,
            const std::vector<std::string>& outputs, const std::string& name,
            const std::vector<std::string>& attributes = {}) {
    std::string n;
    for (const auto& i : inputs) proto::put_bytes(n, 1, i);
    for (const auto& o : outputs) proto::put_bytes(n, 2, o);
    proto::put_bytes(n, 3, name);
    proto::put_bytes(n, 4, op_type);
    for (const auto& a : attributes) proto::put_bytes(n, 5, a);
    proto::put_bytes(graph_, 1, n);
  }

  std::string initializer(const std::string& name, const torch::Tensor& t) {
    proto::put_bytes(initializer_fields_, 5, tensor_proto(name, t, fp16_ && t.is_floating_point()));
    return name;
  }

  // The graph message: nodes, then name, initializers, inputs and outputs.
  std::string finish(const std::string& name, const std::vector<OnnxTensorInfo>& inputs,
                     const std::vector<OnnxTensorInfo>& outputs) {
    std::string g = std::move(graph_);
    proto::put_bytes(g, 2, name);
    g += initializer_fields_;
    initializer_fields_ = std::string();  // the weights: free this copy before the model copies them again
    for (const auto& i : inputs) proto::put_bytes(g, 11, value_info(i));
    for (const auto& o : outputs) proto::put_bytes(g, 12, value_info(o));
    return g;
  }

 private:
  bool fp16_;
  std::string graph_, initializer_fields_;
};

// The activation of `y` (named `name`), ending in value `out`.
void activation(OnnxGraph& g, Activation act, const std::string& y, const std::string& out,
                const std::string& name) {
  switch (act) {
    case Activation::kReLU:
      g.node("Relu", {y}, {out}, name + "/Relu");
      return;
    case Activation::kSigmoid:
      g.node("Sigmoid", {y}, {out}, name + "/Sigmoid");
      return;
    case Activation::kSiLU:  // x * sigmoid(x): opset 17 has no SiLU
      g.node("Sigmoid", {y}, {y + "/sigmoid"}, name + "/Sigmoid");
      g.node("Mul", {y, y + "/sigmoid"}, {out}, name + "/Mul");
      return;
    case Activation::kNone:
      g.node("Identity", {y}, {out}, name + "/Identity");
      return;
  }
}

}  // namespace

OnnxTensorInfo onnx_input(const OnnxExportOptions& o) {
  return {"input", false, {-1, 3, o.image_size, o.image_size}};
}

std::vector<OnnxTensorInfo> onnx_outputs(const InferenceGraph& graph, const OnnxExportOptions& o) {
  std::vector<OnnxTensorInfo> out = {{"logits", false, {-1, graph.num_classes}}};
  if (o.probabilities) {
    out.push_back({"probabilities", false, {-1, graph.num_classes}});
    out.push_back({"classes", true, {-1, std::min(o.topk, graph.num_classes)}});
  }
  return out;
}

std::string onnx_model_bytes(const InferenceGraph& graph, const OnnxExportOptions& o) {
  if (o.int8 && o.fp16) throw std::invalid_argument("an int8 export is not also float16");
  const QuantizedGraph* q = o.int8;
  if (q && (q->value_scale.size() != static_cast<size_t>(graph.num_values) ||
            q->weight_scale.size() != graph.ops.size()))
    throw std::invalid_argument("the int8 export needs the quantized graph's own graph");
  OnnxGraph g(o.fp16);
  // An int8 value: QuantizeLinear -> DequantizeLinear on its grid (what every int8 op reads).
  auto qdq = [&](int v, const std::string& x) {
    if (!q || q->value_scale[static_cast<size_t>(v)] <= 0) return x;
    const std::string scale = g.initializer(
        x + "/scale", torch::tensor(static_cast<float>(q->value_scale[static_cast<size_t>(v)])).reshape({}));
    const std::string zero = g.initializer(
        x + "/zero_point",
        torch::zeros({}, q->value_unsigned[static_cast<size_t>(v)] ? torch::kByte : torch::kChar));
    g.node("QuantizeLinear", {x, scale, zero}, {x + "/q"}, x + "/QuantizeLinear");
    g.node("DequantizeLinear", {x + "/q", scale, zero}, {x + "/dq"}, x + "/DequantizeLinear");
    return x + "/dq";
  };
  // A convolution's or the classifier's weights and bias: float32 initializers, or int8 (weights) and int32
  // (biases of requantized outputs) ones behind DequantizeLinear.
  auto weights = [&](size_t i, const InferenceOp& op) -> std::pair<std::string, std::string> {
    if (!q || !q->weight_scale[i].defined())
      return {g.initializer(op.name + ".weight", op.weight), g.initializer(op.name + ".bias", op.bias)};
    const torch::Tensor sw = q->weight_scale[i].to(torch::kDouble);
    const torch::Tensor integers = integer_weights(op, sw, q->weight_levels);
    const std::string wq = g.initializer(op.name + ".weight_quantized", integers);
    const std::string ws = g.initializer(op.name + ".weight_scale", sw.to(torch::kFloat));
    const std::string wz =
        g.initializer(op.name + ".weight_zero_point", torch::zeros({sw.size(0)}, torch::kChar));
    g.node("DequantizeLinear", {wq, ws, wz}, {op.name + ".weight"}, op.name + ".weight/DequantizeLinear",
           {attribute_int("axis", 0)});
    // A convolution whose output is not requantized (a depthwise one before the squeeze-excitation, a
    // projection shortcut, the classifier) keeps its float32 bias: the runtimes have no integer kernel to
    // fuse there, and an int32 bias would move its output by up to half the input's scale times the weights'
    // (0.017 on EfficientNet-B0's depthwise layers), away from the int8 form convnets runs.
    if (q->value_scale[static_cast<size_t>(op.output)] <= 0)
      return {op.name + ".weight", g.initializer(op.name + ".bias", op.bias)};
    const torch::Tensor sb = sw * q->value_scale[static_cast<size_t>(op.input)];
    const torch::Tensor bias_integers = (op.bias.to(torch::kDouble) / sb).round();
    if (bias_integers.abs().max().item<double>() > 2147483647.0)
      throw std::invalid_argument("the bias of " + op.name +
                                  " does not fit int32 at the input's scale times the weights' (a range "
                                  "calibrated far too small?)");
    const std::string bq = g.initializer(op.name + ".bias_quantized", bias_integers.to(torch::kInt));
    const std::string bs = g.initializer(op.name + ".bias_scale", sb.to(torch::kFloat));
    g.node("DequantizeLinear", {bq, bs}, {op.name + ".bias"}, op.name + ".bias/DequantizeLinear",
           {attribute_int("axis", 0)});
    return {op.name + ".weight", op.name + ".bias"};
  };
  auto value = [](int v) { return v == 0 ? std::string("input") : "v" + std::to_string(v); };
  std::vector<std::string> names(static_cast<size_t>(graph.num_values));
  names[0] = "input";
  if (o.fp16) {
    g.node("Cast", {"input"}, {"input/fp16"}, "input/Cast", {attribute_int("to", kFloat16)});
    names[0] = "input/fp16";
  }
  names[0] = qdq(0, names[0]);
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const InferenceOp& op = graph.ops[i];
    const std::string& x = names[static_cast<size_t>(op.input)];
    const std::string out = value(op.output);
    switch (op.kind) {
      case InferenceOpKind::kConv: {
        const auto [w, b] = weights(i, op);
        const bool more = op.other >= 0 || op.activation != Activation::kNone;
        const std::string y = more ? out + "/conv" : out;
        // TensorFlow's "same" padding is ONNX's SAME_UPPER: ceil(size / stride) outputs, the odd row and
        // column of padding at the bottom and right.
        g.node("Conv", {x, w, b}, {y}, op.name + "/Conv",
               {attribute_ints("kernel_shape", {op.kernel, op.kernel}),
                attribute_ints("strides", {op.stride, op.stride}),
                op.same_padding ? attribute_string("auto_pad", "SAME_UPPER")
                                : attribute_ints("pads", {op.padding, op.padding, op.padding, op.padding}),
                attribute_ints("dilations", {1, 1}), attribute_int("group", op.groups)});
        std::string z = y;
        if (op.other >= 0) {
          z = op.activation == Activation::kNone ? out : out + "/add";
          g.node("Add", {y, names[static_cast<size_t>(op.other)]}, {z}, op.name + "/Add");
        }
        if (op.activation != Activation::kNone) activation(g, op.activation, z, out, op.name);
        break;
      }
      case InferenceOpKind::kMaxPool:
        g.node("MaxPool", {x}, {out}, op.name + "/MaxPool",
               {attribute_ints("kernel_shape", {op.kernel, op.kernel}),
                attribute_ints("strides", {op.stride, op.stride}),
                attribute_ints("pads", {op.padding, op.padding, op.padding, op.padding})});
        break;
      case InferenceOpKind::kGlobalAvgPool:
        g.node("GlobalAveragePool", {x}, {out}, op.name + "/GlobalAveragePool");
        break;
      case InferenceOpKind::kMul:
        g.node("Mul", {x, names[static_cast<size_t>(op.other)]}, {out}, op.name + "/Mul");
        break;
      case InferenceOpKind::kAdd: {
        const std::string z = op.activation == Activation::kNone ? out : out + "/add";
        g.node("Add", {x, names[static_cast<size_t>(op.other)]}, {z}, op.name + "/Add");
        if (op.activation != Activation::kNone) activation(g, op.activation, z, out, op.name);
        break;
      }
      case InferenceOpKind::kLinear: {
        const auto [w, b] = weights(i, op);
        g.node("Flatten", {x}, {out + "/flat"}, op.name + "/Flatten", {attribute_int("axis", 1)});
        g.node("Gemm", {out + "/flat", w, b}, {out}, op.name + "/Gemm", {attribute_int("transB", 1)});
        break;
      }
    }
    names[static_cast<size_t>(op.output)] = qdq(op.output, out);
  }
  const std::string& last = names[static_cast<size_t>(graph.output)];
  if (o.fp16)
    g.node("Cast", {last}, {"logits"}, "logits/Cast", {attribute_int("to", kFloat)});
  else
    g.node("Identity", {last}, {"logits"}, "logits/Identity");
  if (o.probabilities) {
    g.node("Softmax", {"logits"}, {"probabilities"}, "probabilities/Softmax", {attribute_int("axis", 1)});
    const std::string k =
        g.initializer("topk.k", torch::tensor({std::min(o.topk, graph.num_classes)}, torch::kLong));
    g.node("TopK", {"probabilities", k}, {"top_probabilities", "classes"}, "classes/TopK",
           {attribute_int("axis", 1), attribute_int("largest", 1), attribute_int("sorted", 1)});
  }
  const std::string graph_bytes = g.finish(graph.arch, {onnx_input(o)}, onnx_outputs(graph, o));

  std::string model;
  proto::put_int(model, 1, kIrVersion);
  proto::put_bytes(model, 2, "convnets");
  proto::put_bytes(model, 3, o.producer_version);
  std::string opset;
  proto::put_bytes(opset, 1, "");
  proto::put_int(opset, 2, kOpset);
  proto::put_bytes(model, 8, opset);
  for (const auto& [key, val] : o.metadata) {
    std::string entry;
    proto::put_bytes(entry, 1, key);
    proto::put_bytes(entry, 2, val);
    proto::put_bytes(model, 14, entry);
  }
  proto::put_bytes(model, 7, graph_bytes);
  return model;
}

}  // namespace convnets
