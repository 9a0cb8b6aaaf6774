// Latency statistics of timed batches: mean and true percentiles (linear interpolation between order
// statistics, NumPy's default), in milliseconds.
#pragma once
#include <cstdint>
#include <vector>

namespace convnets {

struct LatencyStats {
  int64_t count = 0;
  double avg = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;  // ms
};

double percentile(std::vector<double> values, double q);  // q in [0, 100]
LatencyStats latency_stats(const std::vector<double>& milliseconds);

}  // namespace convnets
