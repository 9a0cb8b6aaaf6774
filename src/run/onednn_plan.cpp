#include "run/onednn_plan.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "data/loader.h"
#include "run/winograd_conv.h"

namespace convnets {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
using DataType = memory::data_type;

namespace {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// nhwc by default: measured on AVX-512 (brgconv kernels) it is as fast as or faster than nChw16c for
// ResNet-50 and EfficientNet-B0, on AVX2 as fast as nChw8c, and it is the one layout where oneDNN 3.2 has an
// optimised kernel for every op of every family (a grouped convolution with fewer channels per group than the
// block runs oneDNN's reference kernel in nChw8c / nChw16c, ~100x slower; so does a broadcast multiply in
// nChw8c on AVX-512).
Tag activation_tag(ActivationLayout layout) {
  switch (layout) {
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

// A primitive descriptor at the implementation it was walked to (next_impl), kept apart from the walk.
template <typename PrimitiveDesc>
PrimitiveDesc cloned(const PrimitiveDesc& desc) {
  dnnl_primitive_desc_t clone = nullptr;
  dnnl::error::wrap_c_api(dnnl_primitive_desc_clone(&clone, desc.get()), "cloning a primitive descriptor");
  return PrimitiveDesc(clone);
}

// --cpu_autotune: the implementations oneDNN offers for one primitive on the CPU's own instruction set (its
// first choice, and the others it would take next: "brgconv_1x1", "jit_1x1", "jit" ... of one ISA; no
// reference or lesser-ISA kernels), each timed on zero-filled memories of the plan's shapes; the fastest is
// kept. Timings on a shared machine are noisy: each candidate runs kRounds times, round robin, and its best
// time counts. Off by default: candidates may sum in different orders, and which one wins can change
// between runs, so the logits could change in their last bits from run to run.
template <typename MakeDesc>
auto fastest_implementation(const MakeDesc& make, dnnl::stream& stream) -> decltype(make()) {
  constexpr int kRounds = 3, kMaxCandidates = 8;
  auto first = make();
  const std::string first_impl = first.impl_info_str();
  const auto colon = first_impl.rfind(':');
  if (colon == std::string::npos) return first;
  const std::string isa = first_impl.substr(colon);  // ":avx512_core"
  struct Candidate {
    decltype(make()) desc;
    dnnl::primitive primitive;
    std::unordered_map<int, memory> args;
    std::vector<torch::Tensor> storage;
    double best = std::numeric_limits<double>::infinity();
  };
  std::vector<Candidate> candidates;
  // One descriptor walked through its implementations (a descriptor made afresh can come from oneDNN's
  // cache and then no longer moves on), each candidate kept as a clone.
  auto walk = make();
  for (int n = 0; n < kMaxCandidates; ++n) {
    const std::string impl = walk.impl_info_str();
    if (impl.size() > isa.size() && impl.compare(impl.size() - isa.size(), isa.size(), isa) == 0) {
      const auto desc = cloned(walk);
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
    if (!walk.next_impl()) break;
  }
  if (candidates.size() < 2) return first;
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
  for (int n = 0; n < 8; ++n) {
    if (walk.impl_info_str() == name) return cloned(walk);
    if (!walk.next_impl()) break;
  }
  return make();
}

// On AVX2 (no AVX-512) oneDNN 3.2 first picks its brgemm kernels for 1x1 and depthwise convolutions in nhwc,
// but its older jit kernels run them faster there. Measured one layer at a time (2 threads, batch 1 and 32):
// ResNet-50's 1x1 layers 1.04-1.41x, EfficientNet-B0's 0.94-1.22x, B0's depthwise 0.90-1.44x; end to end
// B0 at batch 32 ~92 -> ~106 images/s with both, ResNet-50 ~19 -> ~23. A fixed rule, so the logits do not
// depend on timings (--cpu_autotune times them); other instruction sets keep oneDNN's choice
// (docs/architecture.md, "Evaluation and inference").
std::string preferred_implementation(const std::string& first, int64_t kernel, int64_t groups,
                                     int64_t channels, int64_t out_channels) {
  if (first == "brgconv_1x1:avx2" && groups == 1 && kernel == 1) return "jit_1x1:avx2";
  if (first == "brdgmm_dw:avx2" && groups == channels && groups == out_channels) return "jit_dw:avx2";
  return {};
}

}  // namespace

bool onednn_plan_bf16_supported() {
  const auto isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_fp16 ||
         isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx512_core_amx_fp16;
}

std::string onednn_cpu_isa() {
  static const std::pair<dnnl::cpu_isa, const char*> names[] = {
      {dnnl::cpu_isa::sse41, "sse41"},
      {dnnl::cpu_isa::avx, "avx"},
      {dnnl::cpu_isa::avx2, "avx2"},
      {dnnl::cpu_isa::avx2_vnni, "avx2_vnni"},
      {dnnl::cpu_isa::avx2_vnni_2, "avx2_vnni_2"},
      {dnnl::cpu_isa::avx512_core, "avx512_core"},
      {dnnl::cpu_isa::avx512_core_vnni, "avx512_core_vnni"},
      {dnnl::cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
      {dnnl::cpu_isa::avx512_core_fp16, "avx512_core_fp16"},
      {dnnl::cpu_isa::avx512_core_amx, "avx512_core_amx"},
      {dnnl::cpu_isa::avx512_core_amx_fp16, "avx512_core_amx_fp16"}};
  const auto isa = dnnl::get_effective_cpu_isa();
  for (const auto& [value, name] : names)
    if (value == isa) return name;
  return "default";
}

// One input shape's plan. Values (the graph's numbered tensors) live in shared buffers assigned by liveness;
// a convolution whose residual is read for the last time accumulates into the residual's buffer (oneDNN's
// sum post-op), and the squeeze-excitation multiply and the separate add run in place.
struct OneDnnPlan::Shape {
  struct Step {
    dnnl::primitive primitive;
    std::unordered_map<int, memory> args;     // weights, bias: fixed
    std::vector<std::pair<int, int>> values;  // (argument, value) bound once the buffers exist
    // (argument, value) bound as a plain vector of the value's channels (a batch-1 gate read as scales).
    std::vector<std::pair<int, int>> channel_values;
    std::shared_ptr<WinogradConv> winograd;  // runs in place of `primitive`, SRC and DST bound as above
    bool scratchpad = false;
    memory::desc scratchpad_desc;
    std::string info;
  };
  std::vector<Step> steps;
  std::vector<memory::desc> value_desc;
  std::vector<int> value_buffer;          // per value: its buffer (-1: the input or the logits)
  std::vector<torch::Tensor> buffers;     // byte storage (64-byte aligned by LibTorch's CPU allocator)
  std::vector<torch::Tensor> keep_alive;  // biases and other LibTorch storage the primitives read
  torch::Tensor scratchpad;
  torch::Tensor winograd_work;  // float32, shared by the Winograd convolutions
  memory input_user, input;     // the caller's float NCHW batch, and value 0 in the stem's layout
  dnnl::reorder input_reorder;
  memory input_user_nhwc;  // the same batch given channels_last (normalize_images' output)
  dnnl::reorder input_reorder_nhwc;
  // forward_images: uint8 NHWC pixels -> value 0 as x * scale + shift per channel (built on first use, and
  // again if the caller's mean / std change).
  struct ImageInput {
    PixelNormalization constants;
    std::vector<float> scale_row, shift_row;  // per channel, repeated along an image row
    memory pixels, scale_memory, shift_memory, normalized;
    dnnl::reorder convert;   // uint8 -> float32 (oneDNN's binary kernels take no uint8 input)
    dnnl::binary normalize;  // in place
  };
  std::unique_ptr<ImageInput> image_input;
  memory logits;
  int64_t batch = 0, num_classes = 0;
  MemoryUse use;
  dnnl::stream stream{cpu_engine()};
};

namespace {

// A step's weights, reordered once from the op's float32 tensor (`user` describes it) into the layout the
// primitive picked (`packed`), its bias bound in place, and its input.
void bind_weights(OneDnnPlan::Shape::Step& step, OneDnnPlan::Shape& p, const memory::desc& user,
                  const memory::desc& packed, const InferenceOp& op, const memory::desc& bias) {
  const dnnl::engine& engine = cpu_engine();
  memory from(user, engine, op.weight.data_ptr()), to(packed, engine);
  dnnl::reorder(from, to).execute(p.stream, from, to);
  p.stream.wait();
  p.keep_alive.push_back(op.bias);
  step.args[DNNL_ARG_WEIGHTS] = to;
  step.args[DNNL_ARG_BIAS] = memory(bias, engine, op.bias.data_ptr());
  step.values.emplace_back(DNNL_ARG_SRC, op.input);
}

}  // namespace

OneDnnPlan::OneDnnPlan(const InferenceGraph& graph, torch::ScalarType dtype, ActivationLayout layout,
                       bool autotune, bool winograd)
    : graph_(graph), dtype_(dtype), layout_(layout), autotune_(autotune), winograd_(winograd) {
  if (dtype != torch::kFloat && dtype != torch::kBFloat16)
    throw std::invalid_argument("the oneDNN plan runs float32 or bfloat16");
  if (dtype == torch::kBFloat16 && !onednn_plan_bf16_supported())
    throw std::runtime_error("this CPU has no native bfloat16 (AVX512-BF16 / AMX), oneDNN's ISA is " +
                             onednn_cpu_isa() + ": run float32");
  if (graph_.ops.empty() || graph_.ops.back().kind != InferenceOpKind::kLinear)
    throw std::invalid_argument("the oneDNN plan needs a graph that ends with its classifier");
  // Weights as float32 contiguous on the CPU: the plan reorders (and converts) them per input shape.
  for (auto& op : graph_.ops) {
    if (op.weight.defined()) op.weight = op.weight.to(torch::kCPU, torch::kFloat).contiguous();
    if (op.bias.defined()) op.bias = op.bias.to(torch::kCPU, torch::kFloat).contiguous();
  }
}

OneDnnPlan::~OneDnnPlan() = default;

OneDnnPlan::Shape& OneDnnPlan::plan_for(const std::vector<int64_t>& input_shape) {
  auto it = plans_.find(input_shape);
  if (it != plans_.end()) return *it->second;
  return *plans_.emplace(input_shape, build_plan(input_shape, layout_)).first->second;
}

std::unique_ptr<OneDnnPlan::Shape> OneDnnPlan::build_plan(const std::vector<int64_t>& input_shape,
                                                          ActivationLayout layout) const {
  if (input_shape.size() != 4 || input_shape[0] < 1 || input_shape[2] < 1 || input_shape[3] < 1)
    throw std::invalid_argument("the oneDNN plan takes an NCHW batch of at least one image, got " +
                                c10::str(c10::IntArrayRef(input_shape)));
  const dnnl::engine& engine = cpu_engine();
  const DataType dt = dtype_ == torch::kBFloat16 ? DataType::bf16 : DataType::f32;
  const Tag tag = activation_tag(layout);
  auto plan = std::make_unique<Shape>();
  Shape& p = *plan;
  const size_t num_values = static_cast<size_t>(graph_.num_values);
  p.value_desc.resize(num_values);
  p.value_buffer.assign(num_values, -1);
  p.batch = input_shape[0];
  std::vector<size_t> last_use(num_values, 0), readers(num_values, 0);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    last_use[static_cast<size_t>(graph_.ops[i].input)] = i;
    ++readers[static_cast<size_t>(graph_.ops[i].input)];
    if (graph_.ops[i].other >= 0) {
      last_use[static_cast<size_t>(graph_.ops[i].other)] = i;
      ++readers[static_cast<size_t>(graph_.ops[i].other)];
    }
  }
  // Per op: the squeeze-excitation gate folded into its weights (-1: none); see the kMul case.
  std::vector<int> folded_gate(graph_.ops.size(), -1);
  const InferenceOp& stem = graph_.ops.front();
  if (stem.kind == InferenceOpKind::kConv && stem.groups == 1 && input_shape[1] != stem.weight.size(1))
    throw std::invalid_argument("the input has " + std::to_string(input_shape[1]) +
                                " channels, the model takes " + std::to_string(stem.weight.size(1)));
  const memory::desc input_user_desc(Dims(input_shape.begin(), input_shape.end()), DataType::f32, Tag::nchw);

  // Buffers by liveness: a value takes a free buffer (the first that fits, else the largest, grown) and
  // gives it back after its last reader.
  std::vector<int64_t> buffer_bytes;
  std::vector<int> free_buffers;
  auto take_buffer = [&](size_t value) {
    const auto bytes = static_cast<int64_t>(p.value_desc[value].get_size());
    // The smallest free buffer that fits, else the largest free one (grown).
    int best = -1;
    for (const int b : free_buffers) {
      const bool fits = buffer_bytes[b] >= bytes;
      if (best < 0) {
        best = b;
        continue;
      }
      const bool best_fits = buffer_bytes[best] >= bytes;
      if ((fits && (!best_fits || buffer_bytes[b] < buffer_bytes[best])) ||
          (!fits && !best_fits && buffer_bytes[b] > buffer_bytes[best]))
        best = b;
    }
    if (best < 0) {
      best = static_cast<int>(buffer_bytes.size());
      buffer_bytes.push_back(0);
    } else {
      free_buffers.erase(std::find(free_buffers.begin(), free_buffers.end(), best));
    }
    buffer_bytes[best] = std::max(buffer_bytes[best], bytes);
    p.value_buffer[value] = best;
  };
  auto release = [&](int value, size_t op_index, int keep) {
    if (value < 0 || value == keep || last_use[static_cast<size_t>(value)] != op_index) return;
    const int b = p.value_buffer[static_cast<size_t>(value)];
    if (b >= 0 && (keep < 0 || p.value_buffer[static_cast<size_t>(keep)] != b)) free_buffers.push_back(b);
  };

  int64_t scratchpad_bytes = 0, winograd_floats = 0;
  auto add_step = [&](const dnnl::primitive_desc_base& pd, dnnl::primitive primitive, const InferenceOp& op,
                      Shape::Step step) {
    step.primitive = std::move(primitive);
    step.scratchpad_desc = pd.scratchpad_desc();
    step.scratchpad = step.scratchpad_desc.get_size() > 0;
    scratchpad_bytes =
        std::max<int64_t>(scratchpad_bytes, static_cast<int64_t>(step.scratchpad_desc.get_size()));
    step.info = op.name + " " + kind_name(op.kind) + ": " + pd.impl_info_str();
    p.steps.push_back(std::move(step));
  };
  auto user_scratchpad = [] {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  };

  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const InferenceOp& op = graph_.ops[i];
    const auto in = static_cast<size_t>(op.input);
    const auto out = static_cast<size_t>(op.output);
    const bool from_input = op.input == 0 && p.value_buffer[0] < 0;  // the first reader of the input
    const Dims src_dims =
        from_input ? Dims(input_shape.begin(), input_shape.end()) : p.value_desc[in].get_dims();
    const int64_t n = src_dims[0], c = src_dims[1], h = src_dims[2], w = src_dims[3];
    if (from_input && op.kind != InferenceOpKind::kConv)
      throw std::invalid_argument("the oneDNN plan needs a graph that starts with a convolution");
    Shape::Step step;
    int in_place_of = -1;  // the value whose buffer the output reuses
    try {
      switch (op.kind) {
        case InferenceOpKind::kConv: {
          const int64_t out_ch = op.weight.size(0), k = op.kernel, s = op.stride;
          int64_t pt = op.padding, pb = op.padding, pl = op.padding, pr = op.padding;
          if (op.same_padding) {
            std::tie(pt, pb) = same_padding(h, k, s);
            std::tie(pl, pr) = same_padding(w, k, s);
          }
          const int64_t oh = (h + pt + pb - k) / s + 1, ow = (w + pl + pr - k) / s + 1;
          const memory::desc dst_desc({n, out_ch, oh, ow}, dt, tag);
          // 3x3, stride 1, padding 1 between nhwc float32 maps (ResNet's): Winograd F(4x4, 3x3) on oneDNN's
          // matmul, a quarter of the multiplications (run/winograd_conv.h), where its matrix products have
          // rows (tiles) and columns (channels) enough to beat the direct kernel: >= 64 channels in and out,
          // >= 16 tiles of 4x4 outputs (bench/winograd_bench.cpp: ResNet-50's 7x7 maps at batch 1, 4 tiles,
          // run 0.62x). ReLU or no activation only: SiLU's exponentials in the output transform cost more
          // than the products saved (V2-S's 64 -> 256 expansions at 28 px: 0.91-0.95x).
          const int64_t tiles = n * ((oh + 3) / 4) * ((ow + 3) / 4);
          if (winograd_ && dt == DataType::f32 && tag == Tag::nhwc && !from_input && op.groups == 1 &&
              k == 3 && s == 1 && pt == 1 && pb == 1 && pl == 1 && pr == 1 && op.other < 0 &&
              folded_gate[i] < 0 &&
              (op.activation == Activation::kReLU || op.activation == Activation::kNone) && c >= 64 &&
              out_ch >= 64 && tiles >= 16 && WinogradConv::supported(c, out_ch)) {
            step.winograd =
                std::make_shared<WinogradConv>(op.weight, op.bias, op.activation, n, h, w, engine, p.stream);
            scratchpad_bytes = std::max(scratchpad_bytes, step.winograd->scratchpad_bytes());
            winograd_floats = std::max(winograd_floats, step.winograd->work_floats());
            step.values.emplace_back(DNNL_ARG_SRC, op.input);
            step.info = op.name + " winograd_conv: " + step.winograd->info();
            p.value_desc[out] = dst_desc;
            p.steps.push_back(std::move(step));
            break;
          }
          InferenceOp conv = op;  // its groups and weights may be merged below
          auto weight_dims = [&] {
            return conv.groups == 1 ? Dims{out_ch, c, k, k}
                                    : Dims{conv.groups, out_ch / conv.groups, c / conv.groups, k, k};
          };
          const memory::desc bias_desc({out_ch}, DataType::f32, Tag::a);
          // The stem picks the layout of its input (a 3-channel image is better read plain).
          const memory::desc src_desc = from_input ? memory::desc(src_dims, dt, Tag::any) : p.value_desc[in];
          dnnl::post_ops post;
          if (op.other >= 0) {
            const auto other = static_cast<size_t>(op.other);
            if (last_use[other] == i && p.value_desc[other] == dst_desc && other != in) {
              post.append_sum(1.f);  // accumulate into the residual's buffer
              in_place_of = op.other;
            } else {
              post.append_binary(dnnl::algorithm::binary_add, p.value_desc[other]);
              step.values.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, op.other);
            }
          }
          append_activation(post, op.activation);
          dnnl::primitive_attr attr = user_scratchpad();
          attr.set_post_ops(post);
          auto make = [&] {
            return dnnl::convolution_forward::primitive_desc(
                engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_desc,
                memory::desc(weight_dims(), dt, Tag::any), bias_desc, dst_desc, Dims{s, s}, Dims{pt, pl},
                Dims{pb, pr}, attr);
          };
          dnnl::convolution_forward::primitive_desc pd = make();
          // Groups narrower than the CPU's vector (ResNeXt's first stage: 4 channels per group, on AVX2) have
          // no direct kernel in oneDNN 3.2 and fall back to its gemm-based convolution (~6 GFLOP/s here).
          // m neighbouring groups merged into one, their weights block-diagonal (zeros between them: the same
          // sums, m x the products), give groups a direct kernel takes (8 channels: ~68 GFLOP/s on AVX2).
          if (conv.groups > 1 && conv.groups < c &&
              std::string(pd.impl_info_str()).find("gemm") != std::string::npos) {
            for (int64_t m = 2; op.groups % m == 0 && op.groups / m > 1; m *= 2) {
              conv.groups = op.groups / m;
              const auto merged = make();
              if (std::string(merged.impl_info_str()).find("gemm") == std::string::npos) {
                const int64_t in_g = c / op.groups, out_g = out_ch / op.groups, g = conv.groups;
                conv.weight = torch::zeros({out_ch, in_g * m, k, k}, op.weight.options());
                for (int64_t sub = 0; sub < m; ++sub)
                  conv.weight.view({g, m, out_g, m, in_g, k, k})
                      .select(3, sub)
                      .select(1, sub)
                      .copy_(op.weight.view({g, m, out_g, in_g, k, k}).select(1, sub));
                p.keep_alive.push_back(conv.weight);
                pd = merged;
                break;
              }
              conv.groups = op.groups;
            }
          }
          if (autotune_) {
            pd = fastest_implementation(make, p.stream);
          } else if (const std::string name =
                         preferred_implementation(pd.impl_info_str(), k, conv.groups, c, out_ch);
                     !name.empty()) {
            pd = named_implementation(make, name);
          }
          if (from_input) p.value_desc[0] = pd.src_desc();
          // The weights, reordered once into the layout the primitive picked.
          const memory::desc weight_user(weight_dims(), DataType::f32,
                                         conv.groups == 1 ? Tag::oihw : Tag::goihw);
          bind_weights(step, p, weight_user, pd.weights_desc(), conv, bias_desc);
          if (folded_gate[i] >= 0) {
            // The gate scales the weights' input channels on every call, before the convolution reads them:
            // W'[o][c] = W[o][c] * gate[c], reordered from the float32 weights into the packed ones.
            dnnl::primitive_attr scaled = user_scratchpad();
            scaled.set_scales_mask(DNNL_ARG_SRC, 1 << 1);
            const memory& packed = step.args.at(DNNL_ARG_WEIGHTS);
            const dnnl::reorder::primitive_desc scale_pd(engine, weight_user, engine, packed.get_desc(),
                                                         scaled);
            Shape::Step scale_step;
            scale_step.args[DNNL_ARG_SRC] = memory(weight_user, engine, conv.weight.data_ptr());
            scale_step.args[DNNL_ARG_DST] = packed;
            scale_step.channel_values.emplace_back(DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, folded_gate[i]);
            add_step(scale_pd, dnnl::reorder(scale_pd), op, std::move(scale_step));
            p.steps.back().info = op.name + " weights scaled by the gate: " + scale_pd.impl_info_str();
          }
          p.value_desc[out] = dst_desc;
          add_step(pd, dnnl::convolution_forward(pd), op, std::move(step));
          break;
        }
        case InferenceOpKind::kMaxPool:
        case InferenceOpKind::kGlobalAvgPool: {
          const bool global = op.kind == InferenceOpKind::kGlobalAvgPool;
          const int64_t kh = global ? h : op.kernel, kw = global ? w : op.kernel;
          const int64_t s = global ? 1 : op.stride, pad = global ? 0 : op.padding;
          const int64_t oh = (h + 2 * pad - kh) / s + 1, ow = (w + 2 * pad - kw) / s + 1;
          const memory::desc dst_desc({n, c, oh, ow}, dt, tag);
          const dnnl::pooling_forward::primitive_desc pd(
              engine, dnnl::prop_kind::forward_inference,
              global ? dnnl::algorithm::pooling_avg_exclude_padding : dnnl::algorithm::pooling_max,
              p.value_desc[in], dst_desc, {s, s}, {kh, kw}, {0, 0}, {pad, pad}, {pad, pad},
              user_scratchpad());
          step.values.emplace_back(DNNL_ARG_SRC, op.input);
          p.value_desc[out] = dst_desc;
          add_step(pd, dnnl::pooling_forward(pd), op, std::move(step));
          break;
        }
        case InferenceOpKind::kMul:
        case InferenceOpKind::kAdd: {
          const memory::desc& other_desc = p.value_desc[static_cast<size_t>(op.other)];
          const Dims gate_dims = other_desc.get_dims();
          // Batch 1, a squeeze-excitation gate (1x1) multiplying a map that only a 1x1 convolution reads:
          // that convolution's weights are scaled by the gate instead, C x Cout products in place of
          // H x W x C, where H x W >= 16 Cout (the scaling reorder into the packed layout costs ~4x the
          // multiply per value plus a fixed cost: measured, EfficientNet-B0 gains on its 112, 56 and 28 px
          // maps and would lose on 14 px). float32 only, as the gate is read as float32 scales. The product
          // is never formed: its value is the map itself, read by the convolution.
          if (op.kind == InferenceOpKind::kMul && n == 1 && dt == DataType::f32 &&
              op.activation == Activation::kNone && gate_dims[2] == 1 && gate_dims[3] == 1 &&
              gate_dims[1] == c && op.other != op.input && readers[out] == 1) {
            const auto reader = std::find_if(
                graph_.ops.begin() + static_cast<std::ptrdiff_t>(i) + 1, graph_.ops.end(),
                [&](const InferenceOp& r) { return r.input == op.output || r.other == op.output; });
            if (reader != graph_.ops.end() && reader->kind == InferenceOpKind::kConv &&
                reader->input == op.output && reader->groups == 1 && reader->kernel == 1 &&
                reader->stride == 1 && reader->padding == 0 && h * w >= 16 * reader->weight.size(0)) {
              const auto j = static_cast<size_t>(reader - graph_.ops.begin());
              folded_gate[j] = op.other;
              auto& gate_last_use = last_use[static_cast<size_t>(op.other)];
              gate_last_use = std::max(gate_last_use, j);
              // `out` shares the map's buffer, handed back after the convolution (its reader).
              p.value_desc[out] = p.value_desc[in];
              p.value_buffer[out] = p.value_buffer[in];
              continue;
            }
          }
          // input (*|+) other, `other` broadcast over H and W where it is 1x1 (the gate); in place.
          dnnl::post_ops post;
          append_activation(post, op.activation);
          dnnl::primitive_attr attr = user_scratchpad();
          attr.set_post_ops(post);
          const dnnl::binary::primitive_desc pd(
              engine,
              op.kind == InferenceOpKind::kMul ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_add,
              p.value_desc[in], other_desc, p.value_desc[in], attr);
          step.values.emplace_back(DNNL_ARG_SRC_0, op.input);
          step.values.emplace_back(DNNL_ARG_SRC_1, op.other);
          p.value_desc[out] = p.value_desc[in];
          if (last_use[in] == i && op.other != op.input) in_place_of = op.input;
          add_step(pd, dnnl::binary(pd), op, std::move(step));
          break;
        }
        case InferenceOpKind::kLinear: {
          if (h != 1 || w != 1)
            throw std::invalid_argument("the classifier's input is " + std::to_string(h) + "x" +
                                        std::to_string(w) + ", the plan needs the pooled 1x1 map");
          const int64_t classes = op.weight.size(0);
          const memory::desc weight_any({classes, c, 1, 1}, dt, Tag::any);
          const memory::desc bias_desc({classes}, DataType::f32, Tag::a);
          const memory::desc dst_desc({n, classes}, DataType::f32, Tag::nc);
          const dnnl::inner_product_forward::primitive_desc pd(engine, dnnl::prop_kind::forward_inference,
                                                               p.value_desc[in], weight_any, bias_desc,
                                                               dst_desc, user_scratchpad());
          bind_weights(step, p, memory::desc({classes, c, 1, 1}, DataType::f32, Tag::oihw), pd.weights_desc(),
                       op, bias_desc);
          p.value_desc[out] = dst_desc;
          p.num_classes = classes;
          add_step(pd, dnnl::inner_product_forward(pd), op, std::move(step));
          break;
        }
      }
    } catch (const dnnl::error& e) {
      throw std::runtime_error("oneDNN cannot build the " + std::string(kind_name(op.kind)) + " of " +
                               op.name + " for input " + std::to_string(n) + "x" + std::to_string(c) + "x" +
                               std::to_string(h) + "x" + std::to_string(w) + ": " + e.what());
    }
    // The output's buffer: the residual's or the input's (in place), or a free one; the logits are the
    // caller's tensor.
    if (from_input) take_buffer(0);
    if (op.output == graph_.output) {
      p.value_buffer[out] = -1;
    } else if (in_place_of >= 0) {
      p.value_buffer[out] = p.value_buffer[static_cast<size_t>(in_place_of)];
    } else {
      take_buffer(out);
    }
    p.steps.back().values.emplace_back(DNNL_ARG_DST, op.output);
    // The accumulated residual is read as the destination too: bind it as DST (same buffer).
    release(op.input, i, in_place_of);
    release(op.other, i, in_place_of);
    release(folded_gate[i], i, in_place_of);
  }
  if (graph_.output != graph_.ops.back().output)
    throw std::invalid_argument("the oneDNN plan needs the classifier's output as the graph's output");

  // Storage, then the memories over it.
  for (int64_t bytes : buffer_bytes) {
    p.buffers.push_back(torch::empty({std::max<int64_t>(bytes, 1)}, torch::kUInt8));
    p.use.buffers += bytes;
  }
  p.scratchpad = torch::empty({std::max<int64_t>(scratchpad_bytes, 1)}, torch::kUInt8);
  p.use.scratchpad = scratchpad_bytes;
  p.winograd_work = torch::empty({std::max<int64_t>(winograd_floats, 1)}, torch::kFloat);
  p.use.scratchpad += winograd_floats * static_cast<int64_t>(sizeof(float));
  for (const auto& desc : p.value_desc) p.use.unshared += static_cast<int64_t>(desc.get_size());
  std::vector<memory> value_memory(num_values);
  for (size_t v = 0; v < num_values; ++v) {
    if (p.value_buffer[v] >= 0)
      value_memory[v] =
          memory(p.value_desc[v], engine, p.buffers[static_cast<size_t>(p.value_buffer[v])].data_ptr());
  }
  const auto logits_value = static_cast<size_t>(graph_.output);
  p.logits = memory(p.value_desc[logits_value], engine, nullptr);
  value_memory[logits_value] = p.logits;
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
  p.input_user = memory(input_user_desc, engine, nullptr);
  p.input = value_memory[0];
  p.input_reorder = dnnl::reorder(p.input_user, p.input);
  p.input_user_nhwc =
      memory(memory::desc(input_user_desc.get_dims(), DataType::f32, Tag::nhwc), engine, nullptr);
  p.input_reorder_nhwc = dnnl::reorder(p.input_user_nhwc, p.input);
  return plan;
}

torch::Tensor OneDnnPlan::run(Shape& p) {
  torch::Tensor logits = torch::empty({p.batch, p.num_classes}, torch::kFloat);
  p.logits.set_data_handle(logits.data_ptr());
  for (auto& step : p.steps) {
    if (step.winograd) {
      step.winograd->execute(static_cast<const float*>(step.args.at(DNNL_ARG_SRC).get_data_handle()),
                             static_cast<float*>(step.args.at(DNNL_ARG_DST).get_data_handle()),
                             p.winograd_work.data_ptr<float>(), p.scratchpad.data_ptr(), p.stream);
    } else {
      step.primitive.execute(p.stream, step.args);
    }
  }
  p.stream.wait();
  p.logits.set_data_handle(nullptr);
  return logits;
}

torch::Tensor OneDnnPlan::forward(const torch::Tensor& x) {
  torch::Tensor input = x.to(torch::kCPU, torch::kFloat);
  // normalize_images' output is channels_last: read it as it is (no NCHW copy to undo in the reorder).
  const bool nhwc =
      input.dim() == 4 && !input.is_contiguous() && input.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (!nhwc) input = input.contiguous();
  const std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  std::lock_guard<std::mutex> lock(mutex_);
  Shape& p = plan_for(shape);
  memory& user = nhwc ? p.input_user_nhwc : p.input_user;
  user.set_data_handle(input.data_ptr());
  (nhwc ? p.input_reorder_nhwc : p.input_reorder).execute(p.stream, user, p.input);
  user.set_data_handle(nullptr);
  return run(p);
}

torch::Tensor OneDnnPlan::forward_images(const torch::Tensor& images, const std::array<double, 3>& mean,
                                         const std::array<double, 3>& std) {
  if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != torch::kUInt8)
    throw std::invalid_argument("the oneDNN plan's image input is uint8 [N, H, W, 3], got " +
                                std::string(c10::toString(images.scalar_type())) + " " +
                                c10::str(images.sizes()));
  const torch::Tensor pixels = images.to(torch::kCPU).contiguous();
  const PixelNormalization constants = pixel_normalization(mean, std);
  const std::vector<int64_t> shape{pixels.size(0), 3, pixels.size(1), pixels.size(2)};
  std::lock_guard<std::mutex> lock(mutex_);
  Shape& p = plan_for(shape);
  // Pixels and value 0 seen as rows of W * 3 values (nhwc): the per-channel constants become one row
  // broadcast down the batch's rows, a case oneDNN's jit binary kernel covers. Other layouts of value 0 (the
  // blocked ones, for measurement) and bfloat16 (rounded once, after the shift) take normalize_images.
  if (p.input.get_desc() != memory::desc(Dims(shape.begin(), shape.end()), DataType::f32, Tag::nhwc)) {
    const torch::Tensor x = normalize_images(pixels, mean, std);  // channels_last: NHWC in memory
    p.input_user_nhwc.set_data_handle(x.data_ptr());
    p.input_reorder_nhwc.execute(p.stream, p.input_user_nhwc, p.input);
    p.input_user_nhwc.set_data_handle(nullptr);
    return run(p);
  }
  if (!p.image_input || !(p.image_input->constants == constants)) {
    const dnnl::engine& engine = cpu_engine();
    const int64_t rows = shape[0] * shape[2], row = shape[3] * 3;
    auto in = std::make_unique<Shape::ImageInput>();
    in->constants = constants;
    for (int64_t i = 0; i < row; ++i) {
      in->scale_row.push_back(constants.scale[static_cast<size_t>(i % 3)]);
      in->shift_row.push_back(constants.shift[static_cast<size_t>(i % 3)]);
    }
    const memory::desc row_desc({1, row}, DataType::f32, Tag::ab);
    in->pixels = memory(memory::desc({rows, row}, DataType::u8, Tag::ab), engine, nullptr);
    in->normalized =
        memory(memory::desc({rows, row}, DataType::f32, Tag::ab), engine, p.input.get_data_handle());
    in->scale_memory = memory(row_desc, engine, in->scale_row.data());
    in->shift_memory = memory(row_desc, engine, in->shift_row.data());
    in->convert = dnnl::reorder(in->pixels, in->normalized);
    // x * scale, rounded, then + shift: normalize_images' addcmul rounds once (a fused multiply-add), so a
    // value may differ from it in its last bit.
    dnnl::post_ops post;
    post.append_binary(dnnl::algorithm::binary_add, row_desc);
    dnnl::primitive_attr attr;
    attr.set_post_ops(post);
    in->normalize = dnnl::binary(dnnl::binary::primitive_desc(engine, dnnl::algorithm::binary_mul,
                                                              in->normalized.get_desc(), row_desc,
                                                              in->normalized.get_desc(), attr));
    p.image_input = std::move(in);
  }
  Shape::ImageInput& in = *p.image_input;
  in.pixels.set_data_handle(pixels.data_ptr());
  in.convert.execute(p.stream, in.pixels, in.normalized);
  in.normalize.execute(p.stream, {{DNNL_ARG_SRC_0, in.normalized},
                                  {DNNL_ARG_SRC_1, in.scale_memory},
                                  {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, in.shift_memory},
                                  {DNNL_ARG_DST, in.normalized}});
  in.pixels.set_data_handle(nullptr);
  return run(p);
}

std::vector<std::string> OneDnnPlan::describe(const std::vector<int64_t>& input_shape) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& step : plan_for(input_shape).steps) out.push_back(step.info);
  return out;
}

OneDnnPlan::MemoryUse OneDnnPlan::memory_use(const std::vector<int64_t>& input_shape) {
  std::lock_guard<std::mutex> lock(mutex_);
  return plan_for(input_shape).use;
}

}  // namespace convnets
