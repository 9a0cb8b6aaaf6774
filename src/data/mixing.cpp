#include "data/mixing.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <numeric>

namespace convnets {

MixParams sample_mix_params(int64_t n, int64_t height, int64_t width, const MixOptions& o, Rng& rng) {
  MixParams p;
  p.partner.resize(static_cast<size_t>(n));
  p.lambda.assign(static_cast<size_t>(n), 1.0);
  p.box.assign(static_cast<size_t>(n) * 4, 0);
  p.cut.assign(static_cast<size_t>(n), false);
  const bool mixup = o.mixup_alpha > 0, cutmix = o.cutmix_alpha > 0;
  // Halves when both are on; each half is paired within itself.
  const int64_t split = mixup && cutmix ? n / 2 : (cutmix ? 0 : n);
  auto pair_range = [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(static_cast<size_t>(end - begin));
    std::iota(idx.begin(), idx.end(), begin);
    if (o.permute_partners) {
      for (int64_t i = static_cast<int64_t>(idx.size()) - 1; i > 0; --i) {
        std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(rng.uniform_int(i + 1))]);
      }
    } else {
      std::reverse(idx.begin(), idx.end());
    }
    for (int64_t i = begin; i < end; ++i)
      p.partner[static_cast<size_t>(i)] = idx[static_cast<size_t>(i - begin)];
  };
  pair_range(0, split);
  pair_range(split, n);
  if (!mixup && !cutmix) return p;
  double shared = -1;
  auto draw = [&](double alpha) {
    if (!o.per_example && shared >= 0) return shared;
    const double v = rng.beta(alpha, alpha);
    if (!o.per_example) shared = v;
    return v;
  };
  for (int64_t i = 0; i < split && mixup; ++i) {
    double lambda = draw(o.mixup_alpha);
    if (o.symmetric_max) lambda = std::max(lambda, 1.0 - lambda);
    p.lambda[static_cast<size_t>(i)] = lambda;
  }
  shared = -1;
  for (int64_t i = split; i < n && cutmix; ++i) {
    // Box centre uniform over the image, side = sqrt(1 - area) of the image side, clipped (TF2 recipe).
    const double area = draw(o.cutmix_alpha);
    const double ratio = std::sqrt(1.0 - area);
    const int64_t rx = rng.uniform_int(width), ry = rng.uniform_int(height);
    const auto rw = static_cast<int64_t>(ratio * width), rh = static_cast<int64_t>(ratio * height);
    int64_t* b = &p.box[static_cast<size_t>(i) * 4];
    b[0] = std::clamp<int64_t>(rx - rw / 2, 0, width);
    b[1] = std::clamp<int64_t>(ry - rh / 2, 0, height);
    b[2] = std::clamp<int64_t>(rx + rw / 2, 0, width);
    b[3] = std::clamp<int64_t>(ry + rh / 2, 0, height);
    p.cut[static_cast<size_t>(i)] = true;
  }
  return p;
}

torch::Tensor smooth_one_hot(const torch::Tensor& labels, int64_t num_classes, double eps) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(labels.device());
  return torch::one_hot(labels, num_classes).to(opts) * (1.0 - eps) + eps / static_cast<double>(num_classes);
}

std::pair<torch::Tensor, torch::Tensor> apply_mix(const torch::Tensor& images, const torch::Tensor& labels,
                                                  int64_t num_classes, double eps, const MixParams& p) {
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  TORCH_CHECK(static_cast<int64_t>(p.partner.size()) == n, "mix parameters are for another batch size");
  const auto dev = images.device();
  // Per example: weight of itself for the whole image (mixup) and its share of the targets.
  std::vector<float> keep(static_cast<size_t>(n)), own_share(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (p.cut[static_cast<size_t>(i)]) {
      const int64_t* b = &p.box[static_cast<size_t>(i) * 4];
      keep[static_cast<size_t>(i)] = 1.0f;
      own_share[static_cast<size_t>(i)] = 1.0f - static_cast<float>((b[2] - b[0]) * (b[3] - b[1])) / (h * w);
    } else {
      keep[static_cast<size_t>(i)] = static_cast<float>(p.lambda[static_cast<size_t>(i)]);
      own_share[static_cast<size_t>(i)] = keep[static_cast<size_t>(i)];
    }
  }
  // The pasted-pixel mask, built on the batch's device from the boxes (mixup examples have empty boxes).
  const auto box = torch::tensor(p.box, torch::kInt64).to(dev).view({n, 4, 1, 1});
  const auto ys = torch::arange(h, torch::TensorOptions().dtype(torch::kInt64).device(dev)).view({1, h, 1});
  const auto xs = torch::arange(w, torch::TensorOptions().dtype(torch::kInt64).device(dev)).view({1, 1, w});
  const torch::Tensor mask = ((ys >= box.select(1, 1)) & (ys < box.select(1, 3)) & (xs >= box.select(1, 0)) &
                              (xs < box.select(1, 2)))
                                 .unsqueeze(1);
  const auto index = torch::tensor(p.partner, torch::kInt64).to(dev);
  const auto keep_t = torch::tensor(keep).to(dev).view({n, 1, 1, 1}).to(images.scalar_type());
  const auto mask_t = mask.to(images.scalar_type());
  const torch::Tensor partner_images = images.index_select(0, index);
  // x' = keep * (1 - mask) * x + (1 - keep) * x_partner + mask * x_partner, with keep = 1 for cut examples.
  torch::Tensor mixed = images * keep_t * (1 - mask_t) + partner_images * ((1 - keep_t) + mask_t);
  const auto share = torch::tensor(own_share).to(dev).view({n, 1});
  const torch::Tensor targets = smooth_one_hot(labels, num_classes, 0.0) * share +
                                smooth_one_hot(labels.index_select(0, index), num_classes, 0.0) * (1 - share);
  return {mixed.contiguous(images.suggest_memory_format()),
          targets * (1.0 - eps) + eps / static_cast<double>(num_classes)};
}

}  // namespace convnets
