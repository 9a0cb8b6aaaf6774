// The avx2.* copies of the numeric tests must really run on the narrower kernel set (test_main.cpp sets it).
#include <ATen/Version.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

TEST(Isa, TheNarrowedKernelSetIsInEffect) {
  const std::string capability = at::get_cpu_capability();
  std::printf("LibTorch CPU capability: %s\n", capability.c_str());
  if (const char* isa = std::getenv("CONVNETS_NARROW_ISA")) {
    EXPECT_EQ(capability, "AVX2") << "CONVNETS_NARROW_ISA=" << isa;
  } else {
    EXPECT_FALSE(capability.empty());
  }
}
