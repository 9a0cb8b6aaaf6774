// The main() of every GoogleTest binary. CONVNETS_NARROW_ISA=avx2 (CTest sets it for the avx2.* copies of
// the numeric tests) limits LibTorch's and oneDNN's CPU kernels to that instruction set. Both libraries read
// their setting once, on first use, so setting it here, before any test runs, is early enough.
// Unless OMP_NUM_THREADS says otherwise, each test binary computes on one thread: CTest runs tests side by
// side (one per core), and processes that spin several OpenMP threads each on the same cores run many times
// slower than one thread each.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (const char* isa = std::getenv("CONVNETS_NARROW_ISA"); isa && *isa) {
    std::string upper = isa;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    setenv("ATEN_CPU_CAPABILITY", isa, 1);
    setenv("ONEDNN_MAX_CPU_ISA", upper.c_str(), 1);
  }
  setenv("OMP_NUM_THREADS", "1", /*overwrite=*/0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
