// What the C++ benches share: the batch sizes from the command line, and the median of repetitions.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace convnets::bench {

// The batch sizes given as arguments, else 1 and 32.
inline std::vector<int64_t> batch_sizes(int argc, char** argv) {
  std::vector<int64_t> batches;
  for (int i = 1; i < argc; ++i) batches.push_back(std::atoll(argv[i]));
  if (batches.empty()) batches = {1, 32};
  return batches;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace convnets::bench
