// Liveness and the best-fit buffer plan on small step lists whose answers are worked out by hand.
#include "models/buffer_plan.h"

#include <gtest/gtest.h>

namespace convnets {
namespace {

TEST(BufferPlan, LastReadsAreTheLastStepThatReadsEachValue) {
  const std::vector<BufferUse> steps = {{{0}, 1}, {{1}, 2}, {{2, 1}, 3}};
  EXPECT_EQ(last_reads(steps, 5), (std::vector<int>{0, 2, 2, -1, -1}));
}

// A chain 0 -> 1 -> 2 -> 3 (the output, the caller's): two buffers alternate, each as large as its largest
// value; the input takes one when first read.
TEST(BufferPlan, AChainAlternatesTwoBuffers) {
  const std::vector<BufferUse> steps = {{{0}, 1}, {{1}, 2}, {{2}, 3}};
  const BufferPlan p = plan_buffers(steps, {100, 50, 80, 10}, 0, 3);
  EXPECT_EQ(p.value_buffer, (std::vector<int>{0, 1, 0, -1}));
  EXPECT_EQ(p.buffer_bytes, (std::vector<int64_t>{100, 50}));
}

// A residual: value 1 is read by step 1 and, for the last time, by step 2, which accumulates into it (in
// place): 3 shares 1's buffer, which is not given back at step 2; 2's buffer is.
TEST(BufferPlan, InPlaceOutputsKeepTheirBuffer) {
  const std::vector<BufferUse> steps = {{{0}, 1}, {{1}, 2}, {{2, 1}, 3, 1}, {{3}, 4}, {{4}, 5}};
  const BufferPlan p = plan_buffers(steps, {64, 64, 64, 64, 64, 8}, 0, 5);
  EXPECT_EQ(p.value_buffer[3], p.value_buffer[1]);
  EXPECT_NE(p.value_buffer[4], p.value_buffer[3]);
  EXPECT_EQ(p.value_buffer[4], p.value_buffer[2]) << "2's buffer came back after step 2";
  EXPECT_EQ(p.value_buffer[5], -1);
}

// Best fit: of the free buffers the smallest that fits; where none fits, the largest, grown.
TEST(BufferPlan, TheSmallestFreeBufferThatFitsElseTheLargestGrown) {
  // Values 1 (10 bytes) and 2 (40) are both alive until step 2; then both are free for 4 (30) and 5 (20).
  const std::vector<BufferUse> steps = {{{0}, 1}, {{0}, 2}, {{1, 2}, 3}, {{3}, 4}, {{3, 4}, 5}, {{5}, 6}};
  const BufferPlan p = plan_buffers(steps, {4, 10, 40, 4, 30, 20, 1}, 0, 6);
  EXPECT_EQ(p.value_buffer[4], p.value_buffer[2]) << "30 bytes: the 40-byte buffer, the only one that fits";
  EXPECT_EQ(p.value_buffer[5], p.value_buffer[1]) << "20 bytes: none fits, the largest free one grown";
  EXPECT_EQ(p.buffer_bytes[static_cast<size_t>(p.value_buffer[1])], 20);
}

TEST(BufferPlan, TheGraphsOwnStepsReadInputAndOther) {
  InferenceGraph g;
  InferenceOp a, b;
  a.input = 0;
  a.output = 1;
  b.input = 1;
  b.other = 0;
  b.output = 2;
  g.ops = {a, b};
  g.num_values = 3;
  const auto uses = buffer_uses(g);
  ASSERT_EQ(uses.size(), 2u);
  EXPECT_EQ(uses[1].reads, (std::vector<int>{1, 0}));
  EXPECT_EQ(last_reads(uses, 3), (std::vector<int>{1, 1, -1}));
}

}  // namespace
}  // namespace convnets
