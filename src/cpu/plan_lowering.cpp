#include "cpu/plan_lowering.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu/onednn_implementations.h"
#include "models/quantization.h"

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

// The lowering of one plan: each op becomes its steps through the function for its kind. The int8 plan adds
// steps of its own: a quantize (a value into its u8 copy) after each op whose output an int8 op reads,
// unless that op is a convolution read only by int8 ops (it then writes the u8 copy itself), and a
// dequantize (the u8 copy back to float32) where a float op (a residual, a pool, a multiply) also reads it.
class Lowering {
 public:
  Lowering(const InferenceGraph& graph, const std::vector<PlanOp>& ops, const std::vector<ValueShape>& shapes,
           torch::ScalarType dtype, const PlanOptions& options, const QuantizedGraph* int8,
           CompiledPlan& plan)
      : options_(options),
        int8_(int8),
        graph_ops_(graph.ops.data()),
        dt_(dtype == torch::kBFloat16 ? DataType::bf16 : DataType::f32),
        tag_(activation_tag(options.layout)),
        p_(plan) {
    const size_t n = shapes.size();
    shapes_ = shapes;
    origin_.resize(n);
    for (size_t v = 0; v < n; ++v) origin_[v] = static_cast<int>(v);
    quantized_.assign(n, -1);
    dequantized_.assign(n, -1);
    std::vector<bool> fused(n, false);
    if (int8_) {
      std::vector<InferenceOpKind> producer(n, InferenceOpKind::kLinear);
      std::vector<int> last_reader(n, -1);
      for (size_t i = 0; i < ops.size(); ++i) {
        producer[static_cast<size_t>(ops[i].op->output)] = ops[i].op->kind;
        for (const int v : ops[i].reads()) last_reader[static_cast<size_t>(v)] = static_cast<int>(i);
      }
      auto is_int8 = [&](int v) { return v >= 0 && int8_->value_scale[static_cast<size_t>(v)] > 0; };
      // A convolution reads its residual from the residual's u8 copy (oneDNN's sum post-op over the copy, in
      // place: the convolution's u8 output overwrites it) where the residual is int8, this is its last read,
      // and the convolution writes its own output as u8; whether it does depends on the other reads of its
      // output, so this settles by iteration (each pass only adds float reads).
      // A multiply without an activation (the squeeze-excitation's input * gate) writes its product's u8 copy
      // itself where only int8 ops read it: the gate scaled by 1 / the product's scale, the zero point added,
      // rounded and saturated on the way out, one pass instead of a multiply and a quantize.
      std::vector<bool> mul_writes_u8(n, false);
      for (const PlanOp& op : ops)
        if (op.op->kind == InferenceOpKind::kMul && op.op->activation == Activation::kNone)
          mul_writes_u8[static_cast<size_t>(op.op->output)] = true;
      u8_residual_.assign(ops.size(), false);
      for (size_t i = 0; i < ops.size(); ++i)
        u8_residual_[i] = reads_int8(ops[i]) && ops[i].op->kind == InferenceOpKind::kConv &&
                          is_int8(ops[i].other) &&
                          last_reader[static_cast<size_t>(ops[i].other)] == static_cast<int>(i);
      std::vector<bool> float_read;
      for (bool changed = true; changed;) {
        float_read.assign(n, false);
        for (size_t i = 0; i < ops.size(); ++i) {
          const PlanOp& op = ops[i];
          for (const int v : op.reads()) {
            const bool int8_read = reads_int8(op) && (v == op.input || (v == op.other && u8_residual_[i]));
            if (!int8_read) float_read[static_cast<size_t>(v)] = true;
          }
        }
        for (size_t v = 0; v < n; ++v)
          fused[v] = is_int8(static_cast<int>(v)) && v != 0 && !float_read[v] &&
                     (producer[v] == InferenceOpKind::kConv || mul_writes_u8[v]);
        changed = false;
        for (size_t i = 0; i < ops.size(); ++i) {
          if (u8_residual_[i] && !fused[static_cast<size_t>(ops[i].op->output)]) {
            u8_residual_[i] = false;
            changed = true;
          }
        }
      }
      auto add_value = [&](int of) {
        shapes_.push_back(shapes[static_cast<size_t>(of)]);
        origin_.push_back(of);
        return static_cast<int>(shapes_.size()) - 1;
      };
      for (size_t v = 0; v < n; ++v) {
        if (!is_int8(static_cast<int>(v))) continue;
        quantized_[v] = add_value(static_cast<int>(v));
        if (float_read[v]) dequantized_[v] = add_value(static_cast<int>(v));
      }
    }
    // The steps in order, each op reading the u8 copy (int8 ops) or the dequantized one (float ops).
    auto after = [&](int v) {
      if (quantized_[static_cast<size_t>(v)] < 0 || fused[static_cast<size_t>(v)]) return;
      items_.push_back({Item::kQuantize, {}, v, quantized_[static_cast<size_t>(v)]});
      if (dequantized_[static_cast<size_t>(v)] >= 0)
        items_.push_back({Item::kDequantize,
                          {},
                          quantized_[static_cast<size_t>(v)],
                          dequantized_[static_cast<size_t>(v)]});
    };
    after(0);
    for (const PlanOp& op : ops) {
      PlanOp read = op;
      auto float_copy = [&](int& v) {
        if (v >= 0 && dequantized_[static_cast<size_t>(v)] >= 0) v = dequantized_[static_cast<size_t>(v)];
      };
      const size_t index = static_cast<size_t>(&op - ops.data());
      if (int8_ && reads_int8(op)) {
        read.input = quantized_[static_cast<size_t>(op.input)];
      } else {
        float_copy(read.input);
      }
      if (int8_ && u8_residual_[index]) {
        read.other = quantized_[static_cast<size_t>(op.other)];
      } else {
        float_copy(read.other);
      }
      float_copy(read.gate);
      const int out = op.op->output;
      items_.push_back({Item::kOp, read, -1,
                        fused[static_cast<size_t>(out)] ? quantized_[static_cast<size_t>(out)] : out});
      after(out);
    }
    p_.value_desc.resize(shapes_.size());
    if (int8_) p_.value_desc[0] = memory::desc(dims_of(shapes_[0]), dt_, tag_);  // the stem reads its u8 copy
    std::vector<BufferUse> reads;
    for (const Item& item : items_) reads.push_back({item.reads(), item.output, -1});
    last_ = last_reads(reads, static_cast<int>(shapes_.size()));
  }

  std::vector<BufferUse> lower_all() {
    std::vector<BufferUse> uses;
    for (size_t i = 0; i < items_.size(); ++i) {
      const Item& item = items_[i];
      const size_t steps_before = p_.steps.size();
      int in_place_of = -1;
      const std::string name =
          item.kind == Item::kOp ? item.op.op->name : "value " + std::to_string(item.value);
      try {
        in_place_of = item.kind == Item::kOp ? lower(i) : lower_int8_copy(i);
      } catch (const dnnl::error& e) {
        const ValueShape& x = shape(item.kind == Item::kOp ? item.op.input : item.value);
        throw std::runtime_error("oneDNN cannot build the " +
                                 std::string(item.kind == Item::kOp         ? kind_name(item.op.op->kind)
                                             : item.kind == Item::kQuantize ? "quantize"
                                                                            : "dequantize") +
                                 " of " + name + " for input " + std::to_string(x.n) + "x" +
                                 std::to_string(x.c) + "x" + std::to_string(x.h) + "x" + std::to_string(x.w) +
                                 ": " + e.what());
      }
      if (p_.steps.size() == steps_before) throw std::logic_error(name + ": lowered to no step");
      p_.steps.back().values.emplace_back(DNNL_ARG_DST, item.output);
      uses.push_back({item.reads(), item.output, in_place_of});
    }
    return uses;
  }

 private:
  // One step of the lowering: an op of the plan (its reads renumbered to the int8 plan's copies), or a
  // quantize / dequantize of `value` into `output`.
  struct Item {
    enum Kind { kOp, kQuantize, kDequantize } kind = kOp;
    PlanOp op;
    int value = -1, output = -1;
    std::vector<int> reads() const { return kind == kOp ? op.reads() : std::vector<int>{value}; }
  };
  static bool reads_int8(const PlanOp& op) {
    return op.op->kind == InferenceOpKind::kConv || op.op->kind == InferenceOpKind::kLinear;
  }

  // Lowers op i; returns the value whose buffer its output takes over (-1: none).
  int lower(size_t i) {
    if (int8_ && reads_int8(items_[i].op)) return lower_int8_conv(i);
    switch (items_[i].op.op->kind) {
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
  int origin(int value) const { return origin_[static_cast<size_t>(value)]; }
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

  // A convolution's residual (accumulated into the residual's buffer where this is its last read and the
  // layouts match, else a binary add) and activation, as post-ops; `in_place_of` set when accumulating.
  dnnl::primitive_attr residual_and_activation(size_t i, const memory::desc& dst_desc, Step& step,
                                               int& in_place_of) {
    const PlanOp& op = items_[i].op;
    dnnl::post_ops post;
    if (op.other >= 0) {
      if (last_read_at(op.other, i) && desc(op.other) == dst_desc && op.other != op.input) {
        post.append_sum(1.f);
        in_place_of = op.other;
      } else {
        post.append_binary(dnnl::algorithm::binary_add, desc(op.other));
        step.values.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, op.other);
      }
    }
    append_activation(post, op.op->activation);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(post);
    return attr;
  }

  int lower_conv(size_t i) {
    const PlanOp& op = items_[i].op;
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
    const PlanOp& op = items_[i].op;
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
    dnnl::primitive_attr attr = residual_and_activation(i, dst_desc, step, in_place_of);
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

  // A scale or zero point the int8 steps read at run time, kept alive by the plan.
  memory runtime_scalar(double value, bool zero_point) {
    const torch::Tensor t = zero_point ? torch::tensor({static_cast<int32_t>(value)}, torch::kInt)
                                       : torch::tensor({static_cast<float>(value)}, torch::kFloat);
    p_.keep_alive.push_back(t);
    return memory(memory::desc({1}, zero_point ? DataType::s32 : DataType::f32, Tag::a), cpu_engine(),
                  t.data_ptr());
  }
  double value_scale(int value) const { return int8_->value_scale[static_cast<size_t>(origin(value))]; }
  // Signed values are stored with zero point 128: u8 holds q + 128 for q in [-128, 127].
  int zero_point(int value) const {
    return int8_->value_unsigned[static_cast<size_t>(origin(value))] ? 0 : 128;
  }
  memory::desc u8_desc(int value) const {
    return memory::desc(dims_of(shape(value)), DataType::u8, Tag::nhwc);
  }

  // A value into its u8 copy (q = round(x / scale) + zero point, saturated), or the copy back to float32.
  int lower_int8_copy(size_t i) {
    const Item& item = items_[i];
    const bool quantize = item.kind == Item::kQuantize;
    const int original = origin(item.value);
    if (quantize) {
      p_.value_desc[static_cast<size_t>(item.output)] = u8_desc(item.output);
    } else {
      p_.value_desc[static_cast<size_t>(item.output)] = desc(original);
    }
    const int arg = quantize ? DNNL_ARG_DST : DNNL_ARG_SRC;
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_scales_mask(arg, 0);
    const int zp = zero_point(original);
    if (zp != 0) attr.set_zero_points_mask(arg, 0);
    const dnnl::reorder::primitive_desc pd(cpu_engine(), desc(item.value), cpu_engine(), desc(item.output),
                                           attr);
    Step step;
    step.values.emplace_back(DNNL_ARG_SRC, item.value);
    step.args[DNNL_ARG_ATTR_SCALES | arg] = runtime_scalar(value_scale(original), false);
    if (zp != 0) step.args[DNNL_ARG_ATTR_ZERO_POINTS | arg] = runtime_scalar(zp, true);
    add_step(pd, dnnl::reorder(pd), std::move(step),
             std::string(quantize ? "quantize " : "dequantize ") + value_label(original) + ": " +
                 pd.impl_info_str());
    return -1;
  }
  std::string value_label(int value) const {
    for (const Item& item : items_)
      if (item.kind == Item::kOp && item.op.op->output == value) return item.op.op->name;
    return "input";
  }

  // A convolution or the classifier (as a 1x1 convolution) of the int8 plan: u8 input x s8 weights summed in
  // int32, times the input's and each output channel's scale, plus the bias, the residual (float32) and the
  // activation; written as float32, or as the output's u8 copy (divided by its scale, rounded, its zero
  // point added, saturated) where only int8 ops read the output.
  int lower_int8_conv(size_t i) {
    const Item& item = items_[i];
    const PlanOp& op = item.op;
    const InferenceOp& conv = *op.op;
    const bool linear = conv.kind == InferenceOpKind::kLinear;
    const ValueShape& x = shape(op.input);
    const int64_t out_ch = conv.weight.size(0), k = linear ? 1 : conv.kernel, s = linear ? 1 : conv.stride;
    const auto [pt, pb] = linear ? std::pair<int64_t, int64_t>{0, 0} : op_padding(conv, x.h);
    const auto [pl, pr] = linear ? std::pair<int64_t, int64_t>{0, 0} : op_padding(conv, x.w);
    const bool writes_u8 = item.output != conv.output;
    const memory::desc dst_desc =
        linear      ? memory::desc({x.n, out_ch, 1, 1}, DataType::f32, Tag::nhwc)  // the logits [N, classes]
        : writes_u8 ? u8_desc(item.output)
                    : memory::desc(dims_of(shape(conv.output)), dt_, tag_);
    p_.value_desc[static_cast<size_t>(item.output)] = dst_desc;
    if (linear) p_.num_classes = out_ch;
    const memory::desc bias_desc({out_ch}, DataType::f32, Tag::a);
    Step step;
    int in_place_of = -1;
    dnnl::primitive_attr attr;
    if (op.other >= 0 && p_.value_desc[static_cast<size_t>(op.other)].get_data_type() == DataType::u8) {
      // The residual's u8 copy, in place: its scale times (q + zero point - zero point), added before the
      // activation, then the sum written back as this output's u8.
      if (!last_read_at(op.other, i) || desc(op.other) != dst_desc)
        throw std::logic_error(conv.name + ": a u8 residual must be read last, in the output's layout");
      dnnl::post_ops post;
      post.append_sum(static_cast<float>(value_scale(op.other)), zero_point(op.other), DataType::u8);
      append_activation(post, conv.activation);
      attr = user_scratchpad();
      attr.set_post_ops(post);
      in_place_of = op.other;
    } else {
      attr = residual_and_activation(i, dst_desc, step, in_place_of);
    }
    int64_t groups = conv.groups;
    attr.set_scales_mask(DNNL_ARG_SRC, 0);
    attr.set_scales_mask(DNNL_ARG_WEIGHTS, groups == 1 ? 1 : 3);  // per output channel
    const int src_zp = zero_point(op.input), dst_zp = writes_u8 ? zero_point(item.output) : 0;
    if (src_zp != 0) attr.set_zero_points_mask(DNNL_ARG_SRC, 0);
    if (writes_u8) {
      attr.set_scales_mask(DNNL_ARG_DST, 0);
      if (dst_zp != 0) attr.set_zero_points_mask(DNNL_ARG_DST, 0);
    }
    auto weight_dims = [&] {
      return groups == 1 ? Dims{out_ch, x.c, k, k} : Dims{groups, out_ch / groups, x.c / groups, k, k};
    };
    auto make = [&] {
      return dnnl::convolution_forward::primitive_desc(
          cpu_engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
          desc(op.input), memory::desc(weight_dims(), DataType::s8, Tag::any), bias_desc, dst_desc,
          Dims{s, s}, Dims{pt, pl}, Dims{pb, pr}, attr);
    };
    const int64_t merge =
        group_merge_factor(conv.groups, x.c, options_.group_merge, [&](int64_t merged_groups) {
          groups = merged_groups;
          attr.set_scales_mask(DNNL_ARG_WEIGHTS, groups == 1 ? 1 : 3);
          return !is_gemm_implementation(make().impl_info_str());
        });
    groups = conv.groups / merge;
    attr.set_scales_mask(DNNL_ARG_WEIGHTS, groups == 1 ? 1 : 3);
    // The integer weights: the graph's are q * scale (models/quantization.h), exactly recovered.
    const torch::Tensor& scale = int8_->weight_scale[op_index(conv)];
    torch::Tensor integers = integer_weights(conv, scale, int8_->weight_levels);
    if (linear) integers = integers.reshape({out_ch, x.c, 1, 1});
    if (merge > 1) integers = merged_group_weights(integers, conv.groups, merge);
    const torch::Tensor weight = integers.contiguous();
    p_.keep_alive.push_back(weight);
    dnnl::convolution_forward::primitive_desc pd = make();
    // oneDNN 3.2's AMX 1x1 int8 kernel writes past its output (each image's last rows rounded up to a tile;
    // measured: 4 rows of 36 at 6x6), into the next image's rows or past the buffer: the plan takes the next
    // implementation oneDNN offers (docs/int8.md).
    if (pd.impl_info_str() == std::string(kAmx1x1Int8)) {
      auto walk = make();
      while (walk.impl_info_str() == std::string(kAmx1x1Int8) && walk.next_impl()) {
      }
      if (walk.impl_info_str() != std::string(kAmx1x1Int8)) pd = cloned(walk);
    }
    const memory::desc weight_user(weight_dims(), DataType::s8, groups == 1 ? Tag::oihw : Tag::goihw);
    bind_weights(step, weight_user, pd.weights_desc(), weight, conv.bias, bias_desc, op.input);
    p_.keep_alive.push_back(scale);
    step.args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC] = runtime_scalar(value_scale(op.input), false);
    step.args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS] =
        memory(memory::desc({out_ch}, DataType::f32, Tag::a), cpu_engine(), scale.data_ptr());
    if (src_zp != 0) step.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = runtime_scalar(src_zp, true);
    if (writes_u8) {
      step.args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST] = runtime_scalar(value_scale(item.output), false);
      if (dst_zp != 0) step.args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = runtime_scalar(dst_zp, true);
    }
    std::string info = conv.name + " int8 " + (linear ? "linear" : "conv") + (writes_u8 ? " -> u8" : "") +
                       ": " + pd.impl_info_str();
    if (merge > 1)
      info += " (groups " + std::to_string(conv.groups) + " merged into " + std::to_string(groups) + ")";
    add_step(pd, dnnl::convolution_forward(pd), std::move(step), std::move(info));
    return in_place_of;
  }
  size_t op_index(const InferenceOp& op) const { return static_cast<size_t>(&op - graph_ops_); }

  int lower_pool(size_t i) {
    const PlanOp& op = items_[i].op;
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
  // int8 plan: a multiply may write its output's u8 copy (q = round(input * other / scale) + zero point,
  // saturated): the scale folded into `other`'s, the zero point a linear post-op.
  int lower_binary(size_t i) {
    const Item& item = items_[i];
    const PlanOp& op = item.op;
    const InferenceOp& binary = *op.op;
    const bool writes_u8 = item.output != binary.output;
    dnnl::post_ops post;
    append_activation(post, binary.activation);
    dnnl::primitive_attr attr = user_scratchpad();
    Step step;
    if (writes_u8) {
      if (binary.kind != InferenceOpKind::kMul || binary.activation != Activation::kNone)
        throw std::logic_error(binary.name + ": only a multiply without activation writes u8");
      attr.set_scales_mask(DNNL_ARG_SRC_1, 0);
      step.args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC_1] =
          runtime_scalar(1.0 / value_scale(item.output), false);
      if (const int zp = zero_point(item.output); zp != 0)
        post.append_eltwise(dnnl::algorithm::eltwise_linear, 1.0f, static_cast<float>(zp));
    }
    attr.set_post_ops(post);
    const memory::desc dst_desc = writes_u8 ? u8_desc(item.output) : desc(op.input);
    const dnnl::binary::primitive_desc pd(
        cpu_engine(),
        binary.kind == InferenceOpKind::kMul ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_add,
        desc(op.input), desc(op.other), dst_desc, attr);
    step.values.emplace_back(DNNL_ARG_SRC_0, op.input);
    step.values.emplace_back(DNNL_ARG_SRC_1, op.other);
    p_.value_desc[static_cast<size_t>(item.output)] = dst_desc;
    add_step(pd, dnnl::binary(pd), std::move(step), describe(binary, pd));
    return !writes_u8 && last_read_at(op.input, i) && op.other != op.input ? op.input : -1;
  }

  int lower_linear(size_t i) {
    const PlanOp& op = items_[i].op;
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

  const PlanOptions& options_;
  const QuantizedGraph* int8_;
  const InferenceOp* graph_ops_;  // the graph's ops (an op's index: its weight scales)
  DataType dt_;
  Tag tag_;
  CompiledPlan& p_;
  std::vector<ValueShape> shapes_;            // per value, the int8 copies' included
  std::vector<int> origin_;                   // per value: the graph's value it is (a copy's original)
  std::vector<int> quantized_, dequantized_;  // per graph value: its u8 copy, its float32 copy (-1: none)
  std::vector<bool> u8_residual_;             // per op: reads its residual from the residual's u8 copy
  std::vector<Item> items_;
  std::vector<int> last_;  // per value: the step that reads it last
};

}  // namespace

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::vector<BufferUse> lower_ops(const InferenceGraph& graph, const std::vector<PlanOp>& ops,
                                 const std::vector<ValueShape>& shapes, torch::ScalarType dtype,
                                 const PlanOptions& options, const QuantizedGraph* int8, CompiledPlan& plan) {
  plan.batch = shapes.front().n;
  if (ops.empty() || ops.front().op->kind != InferenceOpKind::kConv || ops.front().input != 0)
    throw std::invalid_argument("the oneDNN plan needs a graph that starts with a convolution");
  if (graph.output != ops.back().op->output || ops.back().op->kind != InferenceOpKind::kLinear)
    throw std::invalid_argument("the oneDNN plan needs the classifier's output as the graph's output");
  if (int8 && dtype != torch::kFloat) throw std::invalid_argument("the int8 plan's float values are float32");
  return Lowering(graph, ops, shapes, dtype, options, int8, plan).lower_all();
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
