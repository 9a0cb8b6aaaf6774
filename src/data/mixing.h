// Mixup and CutMix on whole batches, on the device where the batch lives, with label smoothing folded into
// the soft targets. Sampling (host, deterministic per batch) is separate from mixing (device, exact), so the
// mixing can be checked against a reference on the same parameters.
#pragma once
#include <torch/types.h>

#include <vector>

#include "util/random.h"

namespace convnets {

struct MixOptions {
  double mixup_alpha = 0.0;  // Beta(alpha, alpha); 0 = off
  double cutmix_alpha =
      0.0;  // 0 = off; with both on, the first half of the batch is mixed up, the second cut
  // RN50 TF1 / EfficientNet TF2: one lambda per example; PyTorch recipe: one per batch.
  bool per_example = true;
  // EfficientNet TF2 takes lambda = max(lambda, 1 - lambda) for mixup.
  bool symmetric_max = false;
  // Partner of example i: the reversed batch (TF recipes) or a random permutation (PyTorch recipe).
  bool permute_partners = false;
};

// One batch's random draws: partner index, mixup weight (1 = unmixed) and cut box per example.
struct MixParams {
  std::vector<int64_t> partner;
  std::vector<double> lambda;  // weight of the example itself (mixup examples)
  std::vector<int64_t> box;    // cutmix: x0, y0, x1, y1 per example (empty box: not cut)
  std::vector<bool> cut;       // true: cutmix example, false: mixup example
};

MixParams sample_mix_params(int64_t batch, int64_t height, int64_t width, const MixOptions& options,
                            Rng& rng);

// images: float [N, C, H, W] (any memory format, any device); labels: int64 [N]. Returns mixed images and
// soft targets (1 - eps) * mix(one_hot) + eps / K. CutMix targets use each example's own pasted area
// (a deliberate fix of the TF2 recipe, which used the batch-mean area).
std::pair<torch::Tensor, torch::Tensor> apply_mix(const torch::Tensor& images, const torch::Tensor& labels,
                                                  int64_t num_classes, double label_smoothing,
                                                  const MixParams& params);

// Soft targets without mixing (label smoothing only).
torch::Tensor smooth_one_hot(const torch::Tensor& labels, int64_t num_classes, double label_smoothing);

}  // namespace convnets
