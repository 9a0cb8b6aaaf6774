#include "cpu/onednn_plan.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>

#include "cpu/compiled_plan.h"
#include "cpu/plan_decisions.h"
#include "cpu/plan_lowering.h"
#include "data/loader.h"
#include "models/buffer_plan.h"
#include "models/quantization.h"

namespace convnets {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
using DataType = memory::data_type;

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

int onednn_int8_weight_levels() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx2_vnni_2:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_fp16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::avx512_core_amx_fp16:
      return 127;
    default:
      return 63;
  }
}

OneDnnPlan::OneDnnPlan(const QuantizedGraph& int8, const PlanOptions& options)
    : OneDnnPlan(int8.graph, torch::kFloat, options) {
  if (int8.weight_levels > onednn_int8_weight_levels())
    throw std::invalid_argument("the int8 plan on this CPU (oneDNN ISA " + onednn_cpu_isa() +
                                ") runs weights in [-" + std::to_string(onednn_int8_weight_levels()) + ", " +
                                std::to_string(onednn_int8_weight_levels()) + "], not " +
                                std::to_string(int8.weight_levels) + " levels: its kernels would saturate");
  if (int8.value_scale.size() != static_cast<size_t>(graph_.num_values) ||
      int8.weight_scale.size() != graph_.ops.size())
    throw std::invalid_argument("the int8 plan needs a graph made by quantize_graph");
  auto q = std::make_shared<QuantizedGraph>();
  q->value_scale = int8.value_scale;
  q->value_unsigned = int8.value_unsigned;
  q->weight_levels = int8.weight_levels;
  for (const torch::Tensor& s : int8.weight_scale)
    q->weight_scale.push_back(s.defined() ? s.to(torch::kCPU, torch::kFloat).contiguous() : s);
  int8_ = std::move(q);  // (its graph stays empty: graph_ holds the weights)
}

OneDnnPlan::OneDnnPlan(const InferenceGraph& graph, torch::ScalarType dtype, const PlanOptions& options)
    : graph_(graph), dtype_(dtype), options_(options) {
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

OneDnnPlan::CompiledPlan& OneDnnPlan::plan_for(const std::vector<int64_t>& input_shape) {
  auto it = plans_.find(input_shape);
  if (it != plans_.end()) return *it->second;
  return *plans_.emplace(input_shape, compile(input_shape)).first->second;
}

// The compile passes, in order.
std::unique_ptr<OneDnnPlan::CompiledPlan> OneDnnPlan::compile(const std::vector<int64_t>& input_shape) const {
  if (input_shape.size() != 4 || input_shape[0] < 1 || input_shape[2] < 1 || input_shape[3] < 1)
    throw std::invalid_argument("the oneDNN plan takes an NCHW batch of at least one image, got " +
                                c10::str(c10::IntArrayRef(input_shape)));
  // 1. Every value's shape (models/inference_graph.h).
  const std::vector<ValueShape> shapes =
      value_shapes(graph_, {input_shape[0], input_shape[1], input_shape[2], input_shape[3]});
  // 2. Rewrites: at batch 1, gates folded into the convolutions that read their products.
  // (Not in the int8 plan: its products are int8 values.)
  const std::vector<PlanOp> ops =
      fold_batch_one_gates(plan_ops(graph_), shapes, dtype_ == torch::kFloat && !int8_);
  // 3. Each op lowered to its primitives, deciding how it runs (cpu/plan_decisions.h).
  auto plan = std::make_unique<CompiledPlan>();
  const std::vector<BufferUse> uses = lower_ops(graph_, ops, shapes, dtype_, options_, int8_.get(), *plan);
  // 4. Buffers shared by liveness, best fit (models/buffer_plan.h); the logits are the caller's tensor.
  const BufferPlan buffers = plan_buffers(uses, value_bytes(*plan), /*input=*/0, /*external=*/graph_.output);
  // 5. Storage allocated, every step's memories bound.
  bind_plan(input_shape, buffers, graph_.output, *plan);
  return plan;
}

torch::Tensor OneDnnPlan::run(CompiledPlan& p) {
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
  CompiledPlan& p = plan_for(shape);
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
  CompiledPlan& p = plan_for(shape);
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
    auto in = std::make_unique<CompiledPlan::ImageInput>();
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
  CompiledPlan::ImageInput& in = *p.image_input;
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
