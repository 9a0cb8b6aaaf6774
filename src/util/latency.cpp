#include "util/latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace convnets {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("percentile of no values");
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

LatencyStats latency_stats(const std::vector<double>& ms) {
  LatencyStats s;
  s.count = static_cast<int64_t>(ms.size());
  if (ms.empty()) return s;
  s.avg = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  s.p50 = percentile(ms, 50);
  s.p90 = percentile(ms, 90);
  s.p95 = percentile(ms, 95);
  s.p99 = percentile(ms, 99);
  return s;
}

}  // namespace convnets
