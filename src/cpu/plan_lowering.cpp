#include "cpu/plan_lowering.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu/onednn_implementations.h"

namespace convnets {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
using DataType = memory::data_type;
using CompiledPlan = OneDnnPlan::CompiledPlan;
using Step = CompiledPlan::Step;

namespace {

Tag activation_tag(ActivationLayout layout) {
  switch (resolved_layout(layout)) {
    case ActivationLayout::kBlocked16:
      return Tag::nChw16c;
    case ActivationLayout::kBlocked8:
      return Tag::nChw8c;
    default:
      return Tag::nhwc;
  }
}

void append_activation(dnnl::post_ops& ops, Activation act) {
  switch (act) {
    case Activation::kReLU:
      ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      break;
    case Activation::kSiLU:
      ops.append_eltwise(dnnl::algorithm::eltwise_swish, 1.f, 0.f);  // x * sigmoid(1 * x)
      break;
    case Activation::kSigmoid:
      ops.append_eltwise(dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
      break;
    case Activation::kNone:
      break;
  }
}

const char* kind_name(InferenceOpKind kind) {
  switch (kind) {
    case InferenceOpKind::kConv:
      return "conv";
    case InferenceOpKind::kMaxPool:
      return "max_pool";
    case InferenceOpKind::kGlobalAvgPool:
      return "global_avg_pool";
    case InferenceOpKind::kMul:
      return "mul";
    case InferenceOpKind::kAdd:
      return "add";
    case InferenceOpKind::kLinear:
      return "linear";
  }
  return "?";
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// --cpu_autotune: the implementations oneDNN offers for one primitive on the CPU's own instruction set (its
// first choice, and the others it would take next: "brgconv_1x1", "jit_1x1", "jit" ... of one ISA; no
// reference or lesser-ISA kernels), each timed on zero-filled memories of the plan's shapes; the fastest is
// kept. Timings on a shared machine are noisy: each candidate runs kRounds times, round robin, and its best
// time counts. Candidates may sum in different orders, and which one wins can change between runs, so the
// logits could change in their last bits from run to run: off by default.
template <typename MakeDesc>
auto fastest_implementation(const MakeDesc& make, dnnl::stream& stream) -> decltype(make()) {
  constexpr int kRounds = 3;
  struct Candidate {
    decltype(make()) desc;
    dnnl::primitive primitive;
    std::unordered_map<int, memory> args;
    std::vector<torch::Tensor> storage;
    double best = std::numeric_limits<double>::infinity();
  };
  const auto descs = implementations_on_first_isa(make);
  if (descs.size() < 2) return descs.front();
  std::vector<Candidate> candidates;
  for (const auto& desc : descs) {
    Candidate c{desc, dnnl::primitive(desc), {}, {}};
    for (const int arg : {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD,
                          DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1}) {
      const memory::desc md = desc.query_md(dnnl::query::exec_arg_md, arg);
      if (md.get_size() == 0) continue;
      c.storage.push_back(torch::zeros({static_cast<int64_t>(md.get_size())}, torch::kUInt8));
      c.args[arg] = memory(md, cpu_engine(), c.storage.back().data_ptr());
    }
    candidates.push_back(std::move(c));
  }
  for (int round = 0; round <= kRounds; ++round) {
    for (auto& c : candidates) {
      const auto t0 = std::chrono::steady_clock::now();
      c.primitive.execute(stream, c.args);
      stream.wait();
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (round > 0) c.best = std::min(c.best, t);  // round 0 warms caches and pages up
    }
  }
  return std::min_element(candidates.begin(), candidates.end(),
                          [](const Candidate& a, const Candidate& b) { return a.best < b.best; })
      ->desc;
}

// oneDNN 3.2's implementations for one primitive, from its first choice on: the first whose name is `name`
// ("jit_1x1:avx2"), else the first choice. The descriptor is walked and the match kept as a clone, as above.
template <typename MakeDesc>
auto named_implementation(const MakeDesc& make, const std::string& name) -> decltype(make()) {
  auto walk = make();
  for (int n = 0; n < kMaxImplementations; ++n) {
    if (walk.impl_info_str() == name) return cloned(walk);
    if (!walk.next_impl()) break;
  }
  return make();
}

Dims dims_of(const ValueShape& s) {
  return {s.n, s.c, s.h, s.w};
}

// The lowering of one plan: each op becomes its steps through the function for its kind.
class Lowering {
 public:
  Lowering(const std::vector<PlanOp>& ops, const std::vector<ValueShape>& shapes, torch::ScalarType dtype,
           const PlanOptions& options, CompiledPlan& plan)
      : ops_(ops),
        shapes_(shapes),
        options_(options),
        dt_(dtype == torch::kBFloat16 ? DataType::bf16 : DataType::f32),
        tag_(activation_tag(options.layout)),
        p_(plan) {
    std::vector<BufferUse> reads;
    for (const PlanOp& op : ops) reads.push_back({op.reads(), op.op->output, -1});
    last_ = last_reads(reads, static_cast<int>(shapes.size()));
  }

  std::vector<BufferUse> lower_all() {
    std::vector<BufferUse> uses;
    for (size_t i = 0; i < ops_.size(); ++i) {
      const PlanOp& op = ops_[i];
      const size_t steps_before = p_.steps.size();
      int in_place_of = -1;
      try {
        in_place_of = lower(i);
      } catch (const dnnl::error& e) {
        const ValueShape& x = shapes_[static_cast<size_t>(op.input)];
        throw std::runtime_error("oneDNN cannot build the " + std::string(kind_name(op.op->kind)) + " of " +
                                 op.op->name + " for input " + std::to_string(x.n) + "x" +
                                 std::to_string(x.c) + "x" + std::to_string(x.h) + "x" + std::to_string(x.w) +
                                 ": " + e.what());
      }
      if (p_.steps.size() == steps_before) throw std::logic_error(op.op->name + ": lowered to no step");
      p_.steps.back().values.emplace_back(DNNL_ARG_DST, op.op->output);
      uses.push_back({op.reads(), op.op->output, in_place_of});
    }
    return uses;
  }

 private:
  // Lowers op i; returns the value whose buffer its output takes over (-1: none).
  int lower(size_t i) {
    switch (ops_[i].op->kind) {
      case InferenceOpKind::kConv:
        return lower_conv(i);
      case InferenceOpKind::kMaxPool:
      case InferenceOpKind::kGlobalAvgPool:
        return lower_pool(i);
      case InferenceOpKind::kMul:
      case InferenceOpKind::kAdd:
        return lower_binary(i);
      case InferenceOpKind::kLinear:
        return lower_linear(i);
    }
    return -1;
  }

  const ValueShape& shape(int value) const { return shapes_[static_cast<size_t>(value)]; }
  const memory::desc& desc(int value) const { return p_.value_desc[static_cast<size_t>(value)]; }
  bool last_read_at(int value, size_t i) const {
    return last_[static_cast<size_t>(value)] == static_cast<int>(i);
  }

  void add_step(const dnnl::primitive_desc_base& pd, dnnl::primitive primitive, Step step, std::string info) {
    step.primitive = std::move(primitive);
    step.scratchpad_desc = pd.scratchpad_desc();
    step.scratchpad = step.scratchpad_desc.get_size() > 0;
    p_.scratchpad_bytes =
        std::max<int64_t>(p_.scratchpad_bytes, static_cast<int64_t>(step.scratchpad_desc.get_size()));
    step.info = std::move(info);
    p_.steps.push_back(std::move(step));
  }
  std::string describe(const InferenceOp& op, const dnnl::primitive_desc_base& pd) const {
    return op.name + " " + kind_name(op.kind) + ": " + pd.impl_info_str();
  }

  // The weights reordered once from the op's float32 tensor (`user` describes it) into the layout the
  // primitive picked (`packed`), the bias bound in place, and the input.
  void bind_weights(Step& step, const memory::desc& user, const memory::desc& packed,
                    const torch::Tensor& weight, const torch::Tensor& bias, const memory::desc& bias_desc,
                    int input) {
    memory from(user, cpu_engine(), weight.data_ptr()), to(packed, cpu_engine());
    dnnl::reorder(from, to).execute(p_.stream, from, to);
    p_.stream.wait();
    p_.keep_alive.push_back(bias);
    step.args[DNNL_ARG_WEIGHTS] = to;
    step.args[DNNL_ARG_BIAS] = memory(bias_desc, cpu_engine(), bias.data_ptr());
    step.values.emplace_back(DNNL_ARG_SRC, input);
  }

  int lower_conv(size_t i) {
    const PlanOp& op = ops_[i];
    p_.value_desc[static_cast<size_t>(op.op->output)] =
        memory::desc(dims_of(shape(op.op->output)), dt_, tag_);
    if (plan_runs_winograd(op, shape(op.input), shape(op.op->output), options_, dt_ == DataType::f32,
                           options_.layout))
      return lower_winograd(op);
    return lower_direct_conv(i);
  }

  int lower_winograd(const PlanOp& op) {
    const ValueShape& x = shape(op.input);
    Step step;
    step.winograd = std::make_shared<WinogradConv>(op.op->weight, op.op->bias, op.op->activation, x.n, x.h,
                                                   x.w, cpu_engine(), p_.stream);
    p_.scratchpad_bytes = std::max(p_.scratchpad_bytes, step.winograd->scratchpad_bytes());
    p_.winograd_floats = std::max(p_.winograd_floats, step.winograd->work_floats());
    step.values.emplace_back(DNNL_ARG_SRC, op.input);
    step.info = op.op->name + " winograd_conv: " + step.winograd->info();
    p_.steps.push_back(std::move(step));
    return -1;
  }

  int lower_direct_conv(size_t i) {
    const PlanOp& op = ops_[i];
    const InferenceOp& conv = *op.op;
    const ValueShape& x = shape(op.input);
    const int64_t out_ch = conv.weight.size(0), k = conv.kernel, s = conv.stride;
    const auto [pt, pb] = op_padding(conv, x.h);
    const auto [pl, pr] = op_padding(conv, x.w);
    const bool reads_input = op.input == 0;
    const memory::desc& dst_desc = desc(conv.output);
    const memory::desc bias_desc({out_ch}, DataType::f32, Tag::a);
    // The stem picks the layout of its input (a 3-channel image is better read plain).
    const memory::desc src_desc = reads_input ? memory::desc(dims_of(x), dt_, Tag::any) : desc(op.input);
    Step step;
    int in_place_of = -1;
    dnnl::post_ops post;
    if (op.other >= 0) {
      if (last_read_at(op.other, i) && desc(op.other) == dst_desc && op.other != op.input) {
        post.append_sum(1.f);  // accumulate into the residual's buffer
        in_place_of = op.other;
      } else {
        post.append_binary(dnnl::algorithm::binary_add, desc(op.other));
        step.values.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, op.other);
      }
    }
    append_activation(post, conv.activation);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(post);
    int64_t groups = conv.groups;
    auto weight_dims = [&] {
      return groups == 1 ? Dims{out_ch, x.c, k, k} : Dims{groups, out_ch / groups, x.c / groups, k, k};
    };
    auto make = [&] {
      return dnnl::convolution_forward::primitive_desc(
          cpu_engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_desc,
          memory::desc(weight_dims(), dt_, Tag::any), bias_desc, dst_desc, Dims{s, s}, Dims{pt, pl},
          Dims{pb, pr}, attr);
    };
    const int64_t merge =
        group_merge_factor(conv.groups, x.c, options_.group_merge, [&](int64_t merged_groups) {
          groups = merged_groups;
          return !is_gemm_implementation(make().impl_info_str());
        });
    groups = conv.groups / merge;
    torch::Tensor weight = conv.weight;
    if (merge > 1) {
      weight = merged_group_weights(conv.weight, conv.groups, merge);
      p_.keep_alive.push_back(weight);
    }
    dnnl::convolution_forward::primitive_desc pd = make();
    if (options_.autotune) {
      pd = fastest_implementation(make, p_.stream);
    } else if (const std::string name = preferred_implementation(pd.impl_info_str(), conv, groups, x.c);
               !name.empty()) {
      pd = named_implementation(make, name);
    }
    if (reads_input) p_.value_desc[0] = pd.src_desc();
    const memory::desc weight_user(weight_dims(), DataType::f32, groups == 1 ? Tag::oihw : Tag::goihw);
    bind_weights(step, weight_user, pd.weights_desc(), weight, conv.bias, bias_desc, op.input);
    if (op.gate >= 0) lower_gate_scaling(conv, op.gate, weight, weight_user, step.args.at(DNNL_ARG_WEIGHTS));
    std::string info = describe(conv, pd);
    if (merge > 1)
      info += " (groups " + std::to_string(conv.groups) + " merged into " + std::to_string(groups) + ")";
    add_step(pd, dnnl::convolution_forward(pd), std::move(step), std::move(info));
    return in_place_of;
  }

  // A folded batch-1 gate scales the weights' input channels on every call, before the convolution reads
  // them: W'[o][c] = W[o][c] * gate[c], reordered from the float32 weights into the packed ones.
  void lower_gate_scaling(const InferenceOp& conv, int gate, const torch::Tensor& weight,
                          const memory::desc& weight_user, const memory& packed) {
    dnnl::primitive_attr scaled = user_scratchpad();
    scaled.set_scales_mask(DNNL_ARG_SRC, 1 << 1);
    const dnnl::reorder::primitive_desc pd(cpu_engine(), weight_user, cpu_engine(), packed.get_desc(),
                                           scaled);
    Step step;
    step.args[DNNL_ARG_SRC] = memory(weight_user, cpu_engine(), weight.data_ptr());
    step.args[DNNL_ARG_DST] = packed;
    step.channel_values.emplace_back(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, gate);
    add_step(pd, dnnl::reorder(pd), std::move(step),
             conv.name + " weights scaled by the gate: " + pd.impl_info_str());
  }

  int lower_pool(size_t i) {
    const PlanOp& op = ops_[i];
    const InferenceOp& pool = *op.op;
    const bool global = pool.kind == InferenceOpKind::kGlobalAvgPool;
    const ValueShape& x = shape(op.input);
    const int64_t kh = global ? x.h : pool.kernel, kw = global ? x.w : pool.kernel;
    const int64_t s = global ? 1 : pool.stride, pad = global ? 0 : pool.padding;
    const memory::desc dst_desc(dims_of(shape(pool.output)), dt_, tag_);
    const dnnl::pooling_forward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::forward_inference,
        global ? dnnl::algorithm::pooling_avg_exclude_padding : dnnl::algorithm::pooling_max, desc(op.input),
        dst_desc, {s, s}, {kh, kw}, {0, 0}, {pad, pad}, {pad, pad}, user_scratchpad());
    Step step;
    step.values.emplace_back(DNNL_ARG_SRC, op.input);
    p_.value_desc[static_cast<size_t>(pool.output)] = dst_desc;
    add_step(pd, dnnl::pooling_forward(pd), std::move(step), describe(pool, pd));
    return -1;
  }

  // input (*|+) other, `other` broadcast over H and W where it is 1x1 (the gate); in place.
  int lower_binary(size_t i) {
    const PlanOp& op = ops_[i];
    const InferenceOp& binary = *op.op;
    dnnl::post_ops post;
    append_activation(post, binary.activation);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(post);
    const dnnl::binary::primitive_desc pd(
        cpu_engine(),
        binary.kind == InferenceOpKind::kMul ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_add,
        desc(op.input), desc(op.other), desc(op.input), attr);
    Step step;
    step.values.emplace_back(DNNL_ARG_SRC_0, op.input);
    step.values.emplace_back(DNNL_ARG_SRC_1, op.other);
    p_.value_desc[static_cast<size_t>(binary.output)] = desc(op.input);
    add_step(pd, dnnl::binary(pd), std::move(step), describe(binary, pd));
    return last_read_at(op.input, i) && op.other != op.input ? op.input : -1;
  }

  int lower_linear(size_t i) {
    const PlanOp& op = ops_[i];
    const InferenceOp& fc = *op.op;
    const int64_t classes = fc.weight.size(0), c = shape(op.input).c;
    const memory::desc weight_any({classes, c, 1, 1}, dt_, Tag::any);
    const memory::desc bias_desc({classes}, DataType::f32, Tag::a);
    const memory::desc dst_desc({shape(op.input).n, classes}, DataType::f32, Tag::nc);
    const dnnl::inner_product_forward::primitive_desc pd(cpu_engine(), dnnl::prop_kind::forward_inference,
                                                         desc(op.input), weight_any, bias_desc, dst_desc,
                                                         user_scratchpad());
    Step step;
    bind_weights(step, memory::desc({classes, c, 1, 1}, DataType::f32, Tag::oihw), pd.weights_desc(),
                 fc.weight, fc.bias, bias_desc, op.input);
    p_.value_desc[static_cast<size_t>(fc.output)] = dst_desc;
    p_.num_classes = classes;
    add_step(pd, dnnl::inner_product_forward(pd), std::move(step), describe(fc, pd));
    return -1;
  }

  const std::vector<PlanOp>& ops_;
  const std::vector<ValueShape>& shapes_;
  const PlanOptions& options_;
  DataType dt_;
  Tag tag_;
  CompiledPlan& p_;
  std::vector<int> last_;  // per value: the op that reads it last
};

}  // namespace

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::vector<BufferUse> lower_ops(const InferenceGraph& graph, const std::vector<PlanOp>& ops,
                                 const std::vector<ValueShape>& shapes, torch::ScalarType dtype,
                                 const PlanOptions& options, CompiledPlan& plan) {
  plan.value_desc.resize(static_cast<size_t>(graph.num_values));
  plan.batch = shapes.front().n;
  if (ops.empty() || ops.front().op->kind != InferenceOpKind::kConv || ops.front().input != 0)
    throw std::invalid_argument("the oneDNN plan needs a graph that starts with a convolution");
  if (graph.output != ops.back().op->output || ops.back().op->kind != InferenceOpKind::kLinear)
    throw std::invalid_argument("the oneDNN plan needs the classifier's output as the graph's output");
  return Lowering(ops, shapes, dtype, options, plan).lower_all();
}

std::vector<int64_t> value_bytes(const CompiledPlan& plan) {
  std::vector<int64_t> bytes;
  for (const auto& d : plan.value_desc) bytes.push_back(static_cast<int64_t>(d.get_size()));
  return bytes;
}

void bind_plan(const std::vector<int64_t>& input_shape, const BufferPlan& buffers, int logits_value,
               CompiledPlan& p) {
  const dnnl::engine& engine = cpu_engine();
  p.value_buffer = buffers.value_buffer;
  for (const int64_t bytes : buffers.buffer_bytes) {
    p.buffers.push_back(torch::empty({std::max<int64_t>(bytes, 1)}, torch::kUInt8));
    p.use.buffers += bytes;
  }
  p.scratchpad = torch::empty({std::max<int64_t>(p.scratchpad_bytes, 1)}, torch::kUInt8);
  p.use.scratchpad = p.scratchpad_bytes + p.winograd_floats * static_cast<int64_t>(sizeof(float));
  p.winograd_work = torch::empty({std::max<int64_t>(p.winograd_floats, 1)}, torch::kFloat);
  for (const auto& desc : p.value_desc) p.use.unshared += static_cast<int64_t>(desc.get_size());
  std::vector<memory> value_memory(p.value_desc.size());
  for (size_t v = 0; v < p.value_desc.size(); ++v) {
    if (p.value_buffer[v] >= 0)
      value_memory[v] =
          memory(p.value_desc[v], engine, p.buffers[static_cast<size_t>(p.value_buffer[v])].data_ptr());
  }
  const auto logits = static_cast<size_t>(logits_value);
  p.logits = memory(p.value_desc[logits], engine, nullptr);
  value_memory[logits] = p.logits;
  for (auto& step : p.steps) {
    for (const auto& [arg, value] : step.values) step.args[arg] = value_memory[static_cast<size_t>(value)];
    for (const auto& [arg, value] : step.channel_values) {
      const memory& m = value_memory[static_cast<size_t>(value)];
      step.args[arg] = memory(memory::desc({m.get_desc().get_dims()[1]}, DataType::f32, Tag::a), engine,
                              m.get_data_handle());
    }
    if (step.scratchpad)
      step.args[DNNL_ARG_SCRATCHPAD] = memory(step.scratchpad_desc, engine, p.scratchpad.data_ptr());
  }
  const memory::desc input_user_desc(Dims(input_shape.begin(), input_shape.end()), DataType::f32, Tag::nchw);
  p.input_user = memory(input_user_desc, engine, nullptr);
  p.input = value_memory[0];
  p.input_reorder = dnnl::reorder(p.input_user, p.input);
  p.input_user_nhwc =
      memory(memory::desc(input_user_desc.get_dims(), DataType::f32, Tag::nhwc), engine, nullptr);
  p.input_reorder_nhwc = dnnl::reorder(p.input_user_nhwc, p.input);
}

}  // namespace convnets
