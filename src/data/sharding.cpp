#include "data/sharding.h"

#include <numeric>
#include <random>
#include <stdexcept>

namespace convnets {

std::vector<int64_t> shard_indices(int64_t n, const ShardPlan& plan) {
  if (plan.world_size < 1 || plan.rank < 0 || plan.rank >= plan.world_size) {
    throw std::invalid_argument("rank " + std::to_string(plan.rank) + " outside world of size " +
                                std::to_string(plan.world_size));
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (plan.shuffle) {
    // mt19937_64 and a hand-written Fisher-Yates: std::shuffle's algorithm is implementation-defined.
    std::mt19937_64 rng(plan.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(plan.epoch));
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
  }
  const int64_t usable = plan.equal_counts ? n / plan.world_size * plan.world_size : n;
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(usable / plan.world_size + 1));
  for (int64_t i = plan.rank; i < usable; i += plan.world_size) mine.push_back(order[static_cast<size_t>(i)]);
  return mine;
}

}  // namespace convnets
