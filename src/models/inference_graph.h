// The inference form of a model, built once from its weights: every BatchNorm folded into the convolution
// before it (in float64, then cast), dropout and stochastic depth gone, and each activation and residual
// addition attached to the convolution that produces it. One description serves every consumer: the ONNX
// exporter (infer/onnx_export.h) writes it as a graph, the fast CPU path (cpu/fast_inference.h) runs it
// with fused oneDNN kernels, and run_inference_graph below runs it with plain ATen ops (the reference).
//
// Each model and block writes its own ops (ConvNetImpl::append_inference_ops, InferenceBlock), next to its
// forward, through a GraphBuilder: a new family needs nothing here.
#pragma once
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

#include "models/layers.h"

namespace convnets {

enum class InferenceOpKind {
  kConv,           // convolution + bias [+ residual] [+ activation]
  kMaxPool,        // kernel, stride, symmetric padding
  kGlobalAvgPool,  // mean over H and W, keeping them as 1x1
  kMul,            // input * other (broadcast: the squeeze-excitation gate)
  kAdd,            // input + other [+ activation] (a residual added after a squeeze-excitation)
  kLinear,         // flatten, then input @ weight^T + bias
};

struct InferenceOp {
  InferenceOpKind kind = InferenceOpKind::kConv;
  int input = 0, output = 0;
  int other =
      -1;  // kConv: a value added before the activation (the residual); kMul, kAdd: the second operand
  torch::Tensor weight, bias;  // kConv [out, in / groups, k, k]; kLinear [out, in]
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
  // kConv: TensorFlow's "same" padding, worked out from the input size (the extra row / column at the bottom
  // / right); `padding` is then 0.
  bool same_padding = false;
  Activation activation = Activation::kNone;
  std::string name;  // the module it comes from, in the model's own names ("layer1.0.conv1", "features.0")
  // Training only (QAT's forward, models/qat.h; inference ignores it): kConv with a residual and kAdd, the
  // stochastic depth rate of the branch the residual (`other`) is added to; kLinear, the dropout rate
  // before it.
  double train_drop = 0;
};

// Values are numbered: 0 is the input (normalised float NCHW), each op writes one new value, in order.
struct InferenceGraph {
  std::string arch;
  std::vector<InferenceOp> ops;
  int num_values = 1;
  int output = 0;  // the logits
  int64_t num_classes = 0;
};

// The modules an op's parameters live in (nullptr where it has none): what QAT's training forward runs
// (models/qat.h). Pointers into the model the graph was built from, valid while it lives.
struct OpModules {
  const torch::nn::Conv2dImpl* conv = nullptr;
  const torch::nn::BatchNorm2dImpl* bn = nullptr;
  const torch::nn::LinearImpl* fc = nullptr;
};

// Appends ops to a graph, numbering their outputs; folds BatchNorm into convolutions in float64.
class GraphBuilder {
 public:
  // `modules`, when given, gets each op's OpModules as it is appended.
  GraphBuilder(InferenceGraph& graph, torch::ScalarType dtype, std::vector<OpModules>* modules = nullptr)
      : g_(graph), dtype_(dtype), modules_(modules) {}
  // conv [-> BatchNorm folded: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) +
  // beta] [+ residual] [-> activation].
  // `same_padding`: the convolution pads its input with pad_same (models/layers.h).
  int conv(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl* bn, int input, Activation act,
           const std::string& name, int residual = -1, bool same_padding = false);
  int conv_bn_act(const ConvBnAct& unit, int input, const std::string& name, int residual = -1) {
    return conv(*unit.conv, unit.bn.get(), input, unit.act, name, residual, unit.same_padding);
  }
  int max_pool(int input, int64_t kernel, int64_t stride, int64_t padding, const std::string& name);
  int global_avg_pool(int input, const std::string& name);
  int mul(int input, int other, const std::string& name);
  int add(int input, int other, Activation act, const std::string& name);
  // The classifier: its output is the graph's output (the logits). `dropout`: the training forward's rate
  // before it.
  void classifier(const torch::nn::LinearImpl& fc, int input, const std::string& name, double dropout = 0);
  // The op that made `value` (a convolution with a residual, an add) adds its residual to a branch that
  // training drops with stochastic depth at rate `p`.
  void set_drop_path(int value, double p);

 private:
  int append(InferenceOp op, int input, OpModules modules = {});
  InferenceGraph& g_;
  torch::ScalarType dtype_;
  std::vector<OpModules>* modules_;
};

// A block of a model (a residual block, an MBConv, ...) writes its inference ops from `input` and returns
// the value of its output. `name` is the block's own path in the model ("layer1.0").
class InferenceBlock {
 public:
  virtual ~InferenceBlock() = default;
  virtual int append_inference_ops(GraphBuilder& b, int input, const std::string& name) const = 0;
};

// The ops of every block of `blocks` (modules that are InferenceBlocks), named prefix + ".<index>".
int append_block_ops(GraphBuilder& b, const std::vector<std::shared_ptr<torch::nn::Module>>& blocks,
                     int input, const std::string& prefix);

// The inference form of `model` (its BatchNorm layers' running statistics and eps are what is folded, so
// the model's train / eval mode does not matter). The folded weights are computed in float64 and kept as
// `dtype` (float32; float64 for exact checks).
// `modules`, when given, gets each op's modules (OpModules).
InferenceGraph inference_graph(const ConvNetImpl& model, const std::string& arch,
                               torch::ScalarType dtype = torch::kFloat,
                               std::vector<OpModules>* modules = nullptr);

// Runs the graph with ATen's reference ops in `x`'s dtype (float32, or float64 for exact checks): the
// logits. Matches the model's eval-mode forward up to rounding.
// `on_value`, when set, sees each value as it is made (value 0 first) and returns what the later ops read in
// its place: calibration observes the values, the int8 simulation rounds them (models/quantization.h).
using ValueHook = std::function<torch::Tensor(int value, const torch::Tensor& x)>;
torch::Tensor run_inference_graph(const InferenceGraph& graph, const torch::Tensor& x,
                                  const ValueHook& on_value = {});
// One op that no backend fuses (max pool, global average pool, the multiply, the add with its activation)
// with ATen: the graph's reference, shared by run_inference_graph and the fused CPU form.
torch::Tensor run_aten_op(const InferenceOp& op, const torch::Tensor& x, const torch::Tensor& other);

// The graph's arithmetic, shared by every backend.
// A value's shape: [n, c, h, w]; the logits are [n, classes, 1, 1].
struct ValueShape {
  int64_t n = 0, c = 0, h = 0, w = 0;
  bool operator==(const ValueShape&) const = default;
};
// A convolution's or pooling window's padding along an axis of size `in`: (before, after); TensorFlow's
// "same" padding where the op has it, else its symmetric padding.
std::pair<int64_t, int64_t> op_padding(const InferenceOp& op, int64_t in);
// The size an op's window gives along an axis of size `in`.
int64_t op_output_size(const InferenceOp& op, int64_t in);
// Every value's shape for an input of shape `input` (value 0); throws std::invalid_argument naming the op
// when a shape does not fit (the classifier on a map that is not 1x1, a residual of another shape).
std::vector<ValueShape> value_shapes(const InferenceGraph& graph, const ValueShape& input);

// The values each op reads (input, then the other operand) in order.
std::vector<int> op_reads(const InferenceOp& op);

}  // namespace convnets
