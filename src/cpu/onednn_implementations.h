// Walking oneDNN's implementations of one primitive: its first choice, then the ones it would take next.
// Shared by the plan (--cpu_autotune, the AVX2 kernel rule) and bench/kernel_choice_bench.cpp.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "cpu/plan_decisions.h"

namespace convnets {

// A primitive descriptor at the implementation it was walked to (next_impl), kept apart from the walk.
template <typename PrimitiveDesc>
PrimitiveDesc cloned(const PrimitiveDesc& desc) {
  dnnl_primitive_desc_t clone = nullptr;
  dnnl::error::wrap_c_api(dnnl_primitive_desc_clone(&clone, desc.get()), "cloning a primitive descriptor");
  return PrimitiveDesc(clone);
}

// The implementations oneDNN offers for the primitive `make()` describes on its first choice's instruction
// set ("brgconv_1x1", "jit_1x1", "jit" ... of one ISA; no reference or lesser-ISA kernels), first choice
// first, each a clone. One descriptor is walked (a descriptor made afresh can come from oneDNN's cache and
// then no longer moves on). Where the first choice names no ISA, it alone.
template <typename MakeDesc>
auto implementations_on_first_isa(const MakeDesc& make) -> std::vector<decltype(make())> {
  auto walk = make();
  const std::string first = walk.impl_info_str();
  const auto colon = first.rfind(':');
  if (colon == std::string::npos) return {walk};
  const std::string isa = first.substr(colon);  // ":avx512_core"
  std::vector<decltype(make())> out;
  for (int n = 0; n < kMaxImplementations; ++n) {
    const std::string impl = walk.impl_info_str();
    if (impl.size() > isa.size() && impl.compare(impl.size() - isa.size(), isa.size(), isa) == 0)
      out.push_back(cloned(walk));
    if (!walk.next_impl()) break;
  }
  return out;
}

}  // namespace convnets
