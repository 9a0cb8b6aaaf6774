// The device side of the training input path, in one place (as timm's prefetch loader): a batch from the
// loader (or the synthetic batch of the benchmarks) reaches the device one batch ahead, is normalised there,
// then mixed (mixup / CutMix) and given soft targets with label smoothing. The trainer only asks for the
// next micro-batch.
//
// Mixing draws are keyed by (seed, epoch, micro-batch x world + rank): each rank draws its own, a resumed
// epoch draws what the uninterrupted one would have, and one process is rank 0 of 1.
#pragma once
#include <array>
#include <memory>
#include <optional>

#include "data/device_batches.h"
#include "data/loader.h"
#include "data/mixing.h"

namespace convnets {

struct DeviceBatchSourceOptions {
  torch::Device device = torch::kCPU;
  std::array<double, 3> mean{}, std{};  // RGB, 0..1 scale
  int64_t num_classes = 1000;
  double label_smoothing = 0;
  uint64_t seed = 0;  // of the mixing draws
  int rank = 0, world_size = 1;
};

// A micro-batch ready for the step: normalised float NCHW (channels_last) images and soft targets [N, K].
struct DeviceBatch {
  torch::Tensor images, targets;
  int64_t size() const { return images.size(0); }
};

class DeviceBatchSource {
 public:
  explicit DeviceBatchSource(const DeviceBatchSourceOptions& options);

  // What the batches come from, from the next epoch on (a progressive stage changes both): a loader (one
  // decode pool at a time: the previous one is released first), or `synthetic` data.
  void use_loader(const std::function<std::unique_ptr<Loader>()>& make_loader);
  void use_synthetic(const SyntheticLoader& synthetic);
  void set_mixing(const MixOptions& mix) { mix_ = mix; }

  // Starts `epoch` at micro-batch `first` (a resumed epoch continues where it stopped).
  void start_epoch(int64_t epoch, int64_t first);
  // The next micro-batch of the epoch. Throws when the loader ends before the epoch's last batch.
  DeviceBatch next();
  // Starts moving the following batch to the device; called once the step on the current one is launched,
  // so that the copy overlaps it (a side stream on CUDA). `more`: the epoch has another batch.
  void prefetch(bool more);
  // Bad records met in the current epoch (0 for synthetic data).
  int64_t skipped_records() const { return loader_ ? loader_->skipped_records() : 0; }

 private:
  DeviceBatchSourceOptions options_;
  std::unique_ptr<Loader> loader_;
  std::optional<DeviceBatches> staged_;
  torch::Tensor synthetic_images_, synthetic_labels_;
  MixOptions mix_;
  int64_t epoch_ = 0, index_ = 0;
};

}  // namespace convnets
