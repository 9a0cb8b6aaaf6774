// libFuzzer: the restricted unpickler (what --weights, --finetune_from and resume read from a .pt file)
// turns every input into a value or a std::runtime_error: no crash, no unbounded recursion (nesting is
// limited to pickle::kMaxDepth), no runaway allocation (run with -malloc_limit_mb).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "util/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto storages = [](const std::string&, torch::ScalarType dtype, int64_t numel) {
    if (numel > (1 << 16)) throw std::runtime_error("storage too large for the fuzzer");
    return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
  };
  try {
    convnets::pickle::load(bytes, storages, "fuzz.pkl");
  } catch (const std::runtime_error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
