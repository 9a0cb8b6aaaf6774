#include "train/loss.h"

#include <torch/torch.h>

namespace convnets {

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // In fp32 whatever the autocast dtype of the logits: log-softmax of half precision loses the small terms.
  return -(targets.to(torch::kFloat) * torch::log_softmax(logits.to(torch::kFloat), 1)).sum(1).mean();
}

}  // namespace convnets
