#include "data/sharding.h"

#include <gtest/gtest.h>

#include <set>

namespace convnets {

TEST(Sharding, TrainingRanksAreDisjointEqualAndReshuffledEachEpoch) {
  const int64_t n = 103;
  for (int world : {1, 2, 3, 8}) {
    std::set<int64_t> seen;
    for (int rank = 0; rank < world; ++rank) {
      const auto mine = shard_indices(n, {.seed = 5, .epoch = 2, .rank = rank, .world_size = world});
      EXPECT_EQ(static_cast<int64_t>(mine.size()), n / world);
      for (auto i : mine) EXPECT_TRUE(seen.insert(i).second);
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), n / world * world);
  }
  const auto a = shard_indices(n, {.seed = 5, .epoch = 0});
  EXPECT_EQ(a, shard_indices(n, {.seed = 5, .epoch = 0}));  // deterministic
  EXPECT_NE(a, shard_indices(n, {.seed = 5, .epoch = 1}));  // new order each epoch
  EXPECT_NE(a, shard_indices(n, {.seed = 6, .epoch = 0}));
}

TEST(Sharding, EvaluationCoversEveryRecordOnce) {
  const int64_t n = 10;
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    for (auto i :
         shard_indices(n, {.rank = rank, .world_size = 3, .shuffle = false, .equal_counts = false})) {
      seen.insert(i);
    }
  }
  EXPECT_EQ(seen, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_THROW(shard_indices(n, {.rank = 3, .world_size = 3}), std::invalid_argument);
}

}  // namespace convnets
