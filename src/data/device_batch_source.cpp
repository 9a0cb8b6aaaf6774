#include "data/device_batch_source.h"

#include <torch/types.h>
#include <torch/utils.h>

namespace convnets {
namespace {
constexpr uint64_t kMixSalt = 0x6d69786d69780001ull;  // per-batch mixing draws
}

DeviceBatchSource::DeviceBatchSource(const DeviceBatchSourceOptions& options) : options_(options) {}

void DeviceBatchSource::use_loader(const std::function<std::unique_ptr<Loader>()>& make_loader) {
  staged_.reset();
  loader_.reset();  // one decode pool at a time
  loader_ = make_loader();
  staged_.emplace(options_.device, options_.mean, options_.std);
  synthetic_images_ = synthetic_labels_ = torch::Tensor();
}

void DeviceBatchSource::use_synthetic(const SyntheticLoader& synthetic) {
  staged_.reset();
  loader_.reset();
  const Batch b = synthetic.next(0, 0);
  synthetic_images_ = normalize_images(b.images.to(options_.device), options_.mean, options_.std);
  synthetic_labels_ = b.labels.to(options_.device);
}

void DeviceBatchSource::start_epoch(int64_t epoch, int64_t first) {
  epoch_ = epoch;
  index_ = first;
  if (loader_) loader_->start_epoch(epoch, first);
  if (staged_) staged_->clear();
}

DeviceBatch DeviceBatchSource::next() {
  torch::Tensor images, labels;
  if (loader_) {
    if (!staged_->has_staged()) {
      std::optional<Batch> batch = loader_->next();
      if (!batch) throw std::runtime_error("the train loader ended early at batch " + std::to_string(index_));
      staged_->stage(*batch);
    }
    std::tie(images, labels) = staged_->take();
  } else {
    if (!synthetic_images_.defined()) throw std::logic_error("DeviceBatchSource: no data source set");
    images = synthetic_images_;
    labels = synthetic_labels_;
  }
  const int64_t index = index_++;
  if (mix_.mixup_alpha <= 0 && mix_.cutmix_alpha <= 0)
    return {images, smooth_one_hot(labels, options_.num_classes, options_.label_smoothing)};
  Rng rng(options_.seed ^ kMixSalt, static_cast<uint64_t>(epoch_),
          static_cast<uint64_t>(index * options_.world_size + options_.rank));
  const MixParams params = sample_mix_params(images.size(0), images.size(2), images.size(3), mix_, rng);
  auto [mixed, targets] = apply_mix(images, labels, options_.num_classes, options_.label_smoothing, params);
  return {mixed, targets};
}

void DeviceBatchSource::prefetch(bool more) {
  if (!loader_ || !more || staged_->has_staged()) return;
  if (std::optional<Batch> batch = loader_->next()) staged_->stage(*batch);
}

}  // namespace convnets
