// Top-1 / top-5 counting, checked against a count that shares no code with it: each label's rank found by
// sorting the row in plain C++, on logits where the labels sit at known ranks.
#include "run/evaluate.h"

#include <gtest/gtest.h>
#include <torch/utils.h>

#include <algorithm>
#include <numeric>

namespace convnets {
namespace {

// For each row, the class at rank `ranks[row]` (0 = the best), found with std::sort.
torch::Tensor labels_at_ranks(const torch::Tensor& logits, const std::vector<int64_t>& ranks) {
  const torch::Tensor l = logits.to(torch::kDouble).contiguous();
  const auto a = l.accessor<double, 2>();
  std::vector<int64_t> labels;
  for (int64_t row = 0; row < l.size(0); ++row) {
    std::vector<int64_t> order(static_cast<size_t>(l.size(1)));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[row][x] > a[row][y]; });
    labels.push_back(order[static_cast<size_t>(ranks[static_cast<size_t>(row)])]);
  }
  return torch::tensor(labels, torch::kInt64);
}

TEST(Evaluate, TopkHitsCountLabelsAmongTheBestOneAndFive) {
  torch::manual_seed(3);
  const int64_t rows = 60;
  const torch::Tensor logits = torch::randn({rows, 1000});  // continuous: no ties
  std::vector<int64_t> ranks;
  for (int64_t r = 0; r < rows; ++r) ranks.push_back(r % 10);  // ranks 0..9, six rows each
  const torch::Tensor labels = labels_at_ranks(logits, ranks);
  const TopkHits hits = count_topk_hits(logits, labels);
  EXPECT_EQ(hits.top1.item<int64_t>(), 6);      // rank 0
  EXPECT_EQ(hits.top5.item<int64_t>(), 5 * 6);  // ranks 0..4, not 5
  // A batch of one, its label at the edges of both counts.
  for (int64_t r : {0, 4, 5}) {
    const torch::Tensor one = logits.narrow(0, 0, 1);
    const TopkHits h = count_topk_hits(one, labels_at_ranks(one, {r}));
    EXPECT_EQ(h.top1.item<int64_t>(), r == 0 ? 1 : 0) << "rank " << r;
    EXPECT_EQ(h.top5.item<int64_t>(), r < 5 ? 1 : 0) << "rank " << r;
  }
}

// With fewer than five classes every label is in the "top 5".
TEST(Evaluate, TopkHitsWithFewerThanFiveClasses) {
  torch::manual_seed(4);
  const torch::Tensor logits = torch::randn({9, 3});
  std::vector<int64_t> ranks;
  for (int64_t r = 0; r < 9; ++r) ranks.push_back(r % 3);
  const TopkHits hits = count_topk_hits(logits, labels_at_ranks(logits, ranks));
  EXPECT_EQ(hits.top1.item<int64_t>(), 3);
  EXPECT_EQ(hits.top5.item<int64_t>(), 9);
}

}  // namespace
}  // namespace convnets
