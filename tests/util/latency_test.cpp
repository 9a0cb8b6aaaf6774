#include "util/latency.h"

#include <gtest/gtest.h>

namespace convnets {
namespace {

TEST(Latency, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile(range(1, 11), [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91 (linear method).
  std::vector<double> v{10, 3, 1, 7, 2, 9, 4, 8, 6, 5};  // order must not matter
  const LatencyStats s = latency_stats(v);
  EXPECT_EQ(s.count, 10);
  EXPECT_DOUBLE_EQ(s.avg, 5.5);
  EXPECT_NEAR(s.p50, 5.5, 1e-12);
  EXPECT_NEAR(s.p90, 9.1, 1e-12);
  EXPECT_NEAR(s.p95, 9.55, 1e-12);
  EXPECT_NEAR(s.p99, 9.91, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({4.0}, 99), 4.0);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 0), 1);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 100), 2);
  EXPECT_THROW(percentile({}, 50), std::invalid_argument);
  EXPECT_EQ(latency_stats({}).count, 0);
}

}  // namespace
}  // namespace convnets
