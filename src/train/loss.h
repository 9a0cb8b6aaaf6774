// Cross-entropy against soft targets (label smoothing and mixing already folded in), batch mean, from logits.
#pragma once
#include <torch/types.h>

namespace convnets {

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace convnets
