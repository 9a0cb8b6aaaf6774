// The oneDNN plan's kernel choices, one layer at a time: every implementation oneDNN 3.2 offers on this CPU's
// instruction set for ResNet-50's 1x1 convolutions, EfficientNet-B0's depthwise ones and ResNeXt-50's grouped
// 3x3s (nhwc float32, bias and the activation fused), timed interleaved in one process (median of the
// repetitions), beside the one the plan runs (cpu/plan_decisions.h: the AVX2 kernel rule, the group merge).
// The README's per-layer kernel figures are made by this.
//
// usage: OMP_NUM_THREADS=2 build/bench/bench_kernel_choice [batch ...]   (default: 1 32)
//        ONEDNN_MAX_CPU_ISA=AVX2 ... for the AVX2 kernels on a larger CPU
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "bench_support.h"
#include "cpu/onednn_implementations.h"
#include "cpu/onednn_plan.h"
#include "cpu/plan_decisions.h"

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;
using convnets::InferenceOp;

struct Layer {
  std::string model;
  int64_t in, out, kernel, stride, groups, size, count;  // count: how many the model has
  bool silu;
};

std::vector<Layer> layers() {
  std::vector<Layer> l;
  // ResNet-50's twelve stride-1 1x1 shapes (conv1, conv3 and layer1's downsample) and its three stride-2
  // downsamples, at 224 px.
  for (const auto& [in, out, size, count] : std::vector<std::array<int64_t, 4>>{{64, 64, 56, 1},
                                                                                {256, 64, 56, 2},
                                                                                {64, 256, 56, 4},
                                                                                {256, 128, 56, 1},
                                                                                {512, 128, 28, 3},
                                                                                {128, 512, 28, 4},
                                                                                {512, 256, 28, 1},
                                                                                {1024, 256, 14, 5},
                                                                                {256, 1024, 14, 6},
                                                                                {1024, 512, 14, 1},
                                                                                {2048, 512, 7, 2},
                                                                                {512, 2048, 7, 3}})
    l.push_back({"ResNet-50 1x1", in, out, 1, 1, 1, size, count, false});
  for (const auto& [in, out, size] :
       std::vector<std::array<int64_t, 3>>{{256, 512, 56}, {512, 1024, 28}, {1024, 2048, 14}})
    l.push_back({"ResNet-50 1x1 stride 2", in, out, 1, 2, 1, size, 1, false});
  // EfficientNet-B0's depthwise convolutions (channels, kernel, stride, input size, count).
  for (const auto& [c, k, s, size, count] : std::vector<std::array<int64_t, 5>>{{32, 3, 1, 112, 1},
                                                                                {96, 3, 2, 112, 1},
                                                                                {144, 3, 1, 56, 1},
                                                                                {144, 5, 2, 56, 1},
                                                                                {240, 5, 1, 28, 1},
                                                                                {240, 3, 2, 28, 1},
                                                                                {480, 3, 1, 14, 2},
                                                                                {480, 5, 1, 14, 1},
                                                                                {672, 5, 1, 14, 2},
                                                                                {672, 5, 2, 14, 1},
                                                                                {1152, 5, 1, 7, 3},
                                                                                {1152, 3, 1, 7, 1}})
    l.push_back({"B0 depthwise", c, c, k, s, c, size, count, true});
  // ResNeXt-50 32x4d's grouped 3x3s (4, 8, 16 and 32 channels per group).
  for (const auto& [c, size, count] :
       std::vector<std::array<int64_t, 3>>{{128, 56, 3}, {256, 28, 3}, {512, 14, 5}, {1024, 7, 2}})
    l.push_back({"ResNeXt-50 grouped 3x3", c, c, 3, 1, 32, size, count, false});
  return l;
}

using convnets::bench::median;

// A convolution of `l` with `groups` groups, its memories, run once per call.
struct Candidate {
  std::string name;
  dnnl::primitive primitive;
  std::vector<torch::Tensor> storage;
  std::unordered_map<int, memory> args;
  std::vector<double> ms;
};

// Every implementation oneDNN offers for the convolution on the first choice's instruction set.
std::vector<Candidate> candidates(const Layer& l, int64_t n, int64_t groups, const dnnl::engine& engine) {
  const int64_t pad = l.kernel / 2, out_size = (l.size + 2 * pad - l.kernel) / l.stride + 1;
  const memory::dims weights = groups == 1
                                   ? memory::dims{l.out, l.in, l.kernel, l.kernel}
                                   : memory::dims{groups, l.out / groups, l.in / groups, l.kernel, l.kernel};
  dnnl::post_ops post;
  post.append_eltwise(l.silu ? dnnl::algorithm::eltwise_swish : dnnl::algorithm::eltwise_relu, 1.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(post);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto make = [&] {
    return dnnl::convolution_forward::primitive_desc(
        engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        memory::desc({n, l.in, l.size, l.size}, DataType::f32, Tag::nhwc),
        memory::desc(weights, DataType::f32, Tag::any), memory::desc({l.out}, DataType::f32, Tag::a),
        memory::desc({n, l.out, out_size, out_size}, DataType::f32, Tag::nhwc), {l.stride, l.stride},
        {pad, pad}, {pad, pad}, attr);
  };
  std::vector<Candidate> out;
  for (const auto& pd : convnets::implementations_on_first_isa(make)) {
    Candidate c{pd.impl_info_str() + (groups != l.groups ? " (groups " + std::to_string(l.groups) + " -> " +
                                                               std::to_string(groups) + ")"
                                                         : ""),
                dnnl::convolution_forward(pd),
                {},
                {},
                {}};
    for (const int arg : {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD}) {
      const memory::desc md = pd.query_md(dnnl::query::exec_arg_md, arg);
      if (md.get_size() == 0) continue;
      c.storage.push_back(torch::rand({static_cast<int64_t>(md.get_size() / 4 + 1)}));
      c.args[arg] = memory(md, engine, c.storage.back().data_ptr());
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int64_t> batches = convnets::bench::batch_sizes(argc, argv);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  std::printf(
      "oneDNN ISA %s, %d threads; ms per convolution, median of 9 interleaved repetitions; the plan's\n"
      "choice marked *; ratio: oneDNN's first choice / the plan's\n\n",
      convnets::onednn_cpu_isa().c_str(), at::get_num_threads());
  std::printf("| batch | layer (x count) | implementations, ms | plan / first choice |\n|---|---|---|---|\n");
  for (const int64_t n : batches) {
    std::map<std::string, std::pair<double, double>> totals;  // model -> (first choice, plan), weighted
    for (const Layer& l : layers()) {
      // The plan's decisions for the layer: merged groups where no direct kernel takes them, the AVX2 rule.
      const int64_t merge = convnets::group_merge_factor(
          l.groups, l.in, convnets::GroupMerge::kWhereNoDirectKernel, [&](int64_t g) {
            return !convnets::is_gemm_implementation(candidates(l, n, g, engine).front().name);
          });
      std::vector<Candidate> cands = candidates(l, n, l.groups, engine);
      size_t planned = 0;  // oneDNN's first choice, unless a rule says otherwise
      if (merge > 1) {
        planned = cands.size();
        for (auto& c : candidates(l, n, l.groups / merge, engine)) cands.push_back(std::move(c));
      } else {
        InferenceOp op;
        op.kernel = l.kernel;
        op.weight = torch::empty({l.out, l.in / l.groups, 1, 1});
        const std::string name = convnets::preferred_implementation(cands.front().name, op, l.groups, l.in);
        for (size_t i = 0; i < cands.size(); ++i)
          if (cands[i].name == name) planned = i;
      }
      for (int rep = 0; rep < 11; ++rep)
        for (auto& c : cands) {
          const auto t0 = std::chrono::steady_clock::now();
          c.primitive.execute(stream, c.args);
          stream.wait();
          const double ms =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
          if (rep >= 2) c.ms.push_back(ms);  // two warm-up rounds
        }
      std::string row;
      const double first_ms = median(cands.front().ms), plan_ms = median(cands[planned].ms);
      for (size_t i = 0; i < cands.size(); ++i) {
        char cell[200];
        std::snprintf(cell, sizeof(cell), "%s%s %.3f%s", row.empty() ? "" : ", ", cands[i].name.c_str(),
                      median(cands[i].ms), i == planned ? "*" : "");
        row += cell;
      }
      auto& [first_total, plan_total] = totals[l.model];
      first_total += first_ms * static_cast<double>(l.count);
      plan_total += plan_ms * static_cast<double>(l.count);
      std::printf("| %lld | %s %lld->%lld k%lld s%lld g%lld %lldx%lld (x%lld) | %s | %.2fx |\n",
                  static_cast<long long>(n), l.model.c_str(), static_cast<long long>(l.in),
                  static_cast<long long>(l.out), static_cast<long long>(l.kernel),
                  static_cast<long long>(l.stride), static_cast<long long>(l.groups),
                  static_cast<long long>(l.size), static_cast<long long>(l.size),
                  static_cast<long long>(l.count), row.c_str(), first_ms / plan_ms);
    }
    for (const auto& [model, t] : totals)
      std::printf("| %lld | %s, all (weighted by count) | first choice %.2f, plan %.2f | %.2fx |\n",
                  static_cast<long long>(n), model.c_str(), t.first, t.second, t.first / t.second);
  }
  return 0;
}
