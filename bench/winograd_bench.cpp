// The oneDNN plan's Winograd F(4x4, 3x3) convolution against oneDNN's direct convolution (its first choice,
// bias and the activation fused, nhwc float32) on ResNet-50's 3x3 stride-1 layers and EfficientNet V2-S's
// 64-channel FusedMBConv expansions, interleaved in one process: per layer the median of the repetitions'
// times and the ratio.
//
// usage: OMP_NUM_THREADS=2 build/bench/bench_winograd [batch ...]   (default: 1 32)
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "bench_support.h"
#include "cpu/winograd_conv.h"

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

using convnets::bench::median;

}  // namespace

int main(int argc, char** argv) {
  const std::vector<int64_t> batches = convnets::bench::batch_sizes(argc, argv);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  struct Layer {
    const char* name;
    int64_t in, out, size, count;  // count: how many the model has
    convnets::Activation act;
  };
  using convnets::Activation;
  const Layer layers[] = {{"ResNet-50 layer1", 64, 64, 56, 3, Activation::kReLU},
                          {"ResNet-50 layer2", 128, 128, 28, 3, Activation::kReLU},
                          {"ResNet-50 layer3", 256, 256, 14, 5, Activation::kReLU},
                          {"ResNet-50 layer4", 512, 512, 7, 2, Activation::kReLU},
                          {"V2-S stage 3 expansion", 64, 256, 28, 3, Activation::kSiLU}};
  std::printf("%d threads; ms per convolution, median of 15 interleaved repetitions\n\n",
              at::get_num_threads());
  std::printf(
      "| batch | layer (x count) | direct (oneDNN) | Winograd F(4x4,3x3) | direct / Winograd "
      "|\n|---|---|---|---|---|\n");
  for (const int64_t n : batches) {
    double direct_total = 0, winograd_total = 0;
    for (const Layer& l : layers) {
      const int64_t c = l.in, k = l.out, s = l.size;
      torch::manual_seed(0);
      const torch::Tensor weight = torch::randn({k, c, 3, 3}) * 0.05, bias = torch::randn({k});
      const torch::Tensor src = torch::relu(torch::randn({n, s, s, c}));  // nhwc
      torch::Tensor dst = torch::empty({n, s, s, k});

      const memory::desc map({n, c, s, s}, DataType::f32, Tag::nhwc),
          out({n, k, s, s}, DataType::f32, Tag::nhwc);
      dnnl::post_ops post;
      if (l.act == Activation::kReLU)
        post.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      else
        post.append_eltwise(dnnl::algorithm::eltwise_swish, 1.f, 0.f);
      dnnl::primitive_attr attr;
      attr.set_post_ops(post);
      const dnnl::convolution_forward::primitive_desc pd(
          engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, map,
          memory::desc({k, c, 3, 3}, DataType::f32, Tag::any), memory::desc({k}, DataType::f32, Tag::a), out,
          {1, 1}, {1, 1}, {1, 1}, attr);
      memory user({{k, c, 3, 3}, DataType::f32, Tag::oihw}, engine, weight.data_ptr());
      memory packed(pd.weights_desc(), engine);
      dnnl::reorder(user, packed).execute(stream, user, packed);
      const dnnl::convolution_forward direct(pd);
      memory src_m(map, engine, src.data_ptr()), dst_m(out, engine, dst.data_ptr()),
          bias_m({{k}, DataType::f32, Tag::a}, engine, bias.data_ptr()), pad_m(pd.scratchpad_desc(), engine);

      convnets::WinogradConv winograd(weight, bias, l.act, n, s, s, engine, stream);
      torch::Tensor work = torch::empty({winograd.work_floats()});
      torch::Tensor scratchpad =
          torch::empty({std::max<int64_t>(winograd.scratchpad_bytes(), 1)}, torch::kUInt8);

      auto time = [&](auto&& f) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        stream.wait();
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      };
      std::vector<double> td, tw;
      for (int rep = 0; rep < 17; ++rep) {
        const double a = time([&] {
          direct.execute(stream, {{DNNL_ARG_SRC, src_m},
                                  {DNNL_ARG_WEIGHTS, packed},
                                  {DNNL_ARG_BIAS, bias_m},
                                  {DNNL_ARG_DST, dst_m},
                                  {DNNL_ARG_SCRATCHPAD, pad_m}});
        });
        const double b = time([&] {
          winograd.execute(src.data_ptr<float>(), dst.data_ptr<float>(), work.data_ptr<float>(),
                           scratchpad.data_ptr(), stream);
        });
        if (rep >= 2) td.push_back(a), tw.push_back(b);  // two warm-up rounds
      }
      const double d = median(td), w = median(tw);
      if (l.in == l.out) {  // ResNet-50's
        direct_total += d * static_cast<double>(l.count);
        winograd_total += w * static_cast<double>(l.count);
      }
      std::printf("| %lld | %s %lld->%lld %lldx%lld (x%lld) | %.3f (%s) | %.3f | %.2fx |\n",
                  static_cast<long long>(n), l.name, static_cast<long long>(c), static_cast<long long>(k),
                  static_cast<long long>(s), static_cast<long long>(s), static_cast<long long>(l.count), d,
                  pd.impl_info_str(), w, d / w);
    }
    std::printf("| %lld | ResNet-50's 13 | %.2f | %.2f | %.2fx |\n", static_cast<long long>(n), direct_total,
                winograd_total, direct_total / winograd_total);
  }
  return 0;
}
