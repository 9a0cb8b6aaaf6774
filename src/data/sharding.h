// Which records a rank reads in an epoch: a permutation that depends only on (seed, epoch), split by rank.
#pragma once
#include <cstdint>
#include <vector>

namespace convnets {

struct ShardPlan {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int rank = 0;
  int world_size = 1;
  bool shuffle = true;
  // Training: every rank gets floor(n / world) records (the remainder is dropped this epoch, a different one
  // next epoch). Evaluation (false): rank r gets records r, r + world, ... so that all ranks together see
  // every record exactly once.
  bool equal_counts = true;
};

// Record indices for `plan.rank`, in reading order. Deterministic across processes and runs.
std::vector<int64_t> shard_indices(int64_t num_records, const ShardPlan& plan);

}  // namespace convnets
