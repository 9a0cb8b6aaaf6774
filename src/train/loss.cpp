#include "train/loss.h"

#include <torch/types.h>
#include <torch/utils.h>

namespace convnets {

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // At least fp32 whatever the autocast dtype of the logits (log-softmax of half precision loses the small
  // terms); float64 stays float64, so identities can be tested without rounding.
  const auto dtype = logits.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  return -(targets.to(dtype) * torch::log_softmax(logits.to(dtype), 1)).sum(1).mean();
}

}  // namespace convnets
