// The batch loader: worker threads decode + transform whole batches into uint8 NHWC tensors (pinned when CUDA
// is present), delivered in order through a bounded window. Deterministic per (seed, rank, epoch): the same
// batches whatever the number of workers, and a resumed epoch continues with exactly the batches it would
// have seen.
#pragma once
#include <torch/types.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/image_source.h"
#include "data/transforms.h"

namespace convnets {

struct Batch {
  torch::Tensor images;  // uint8 [B, H, W, 3]
  torch::Tensor labels;  // int64 [B]
  int64_t epoch = 0;
  int64_t index = 0;  // batch number within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 256;
  int workers = 4;
  int prefetch = 2;   // batches ready ahead of the consumer, per worker
  bool train = true;  // train transform, shuffling, drop_last; otherwise eval transform, every record once
  uint64_t seed = 0;
  int rank = 0, world_size = 1;
  TrainTransformOptions train_transform{};
  EvalTransformOptions eval_transform{};
  bool pin_memory = true;  // only takes effect when CUDA is available
};

class Loader {
 public:
  Loader(std::shared_ptr<const ImageSource> dataset, const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts (or restarts) an epoch at batch `first_batch`; pending work of the previous epoch is discarded.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch in order, or nullopt at the end of the epoch; never an empty one (an eval batch whose
  // records were all bad is counted in skipped_records and passed over). Rethrows a worker's error (e.g.
  // strict mode).
  std::optional<Batch> next();
  // Distinct bad records met in the current epoch (each reported once, by name).
  int64_t skipped_records() const { return dataset_->skipped(); }

 private:
  void worker_loop();
  Batch make_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const;
  bool load_sample(int64_t record, int64_t epoch, uint8_t* out, int64_t& label) const;

  std::shared_ptr<const ImageSource> dataset_;
  LoaderOptions options_;
  bool pinned_ = false;

  std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch; stale results are dropped
  int64_t epoch_ = -1;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t next_to_schedule_ = 0, next_to_deliver_ = 0, num_batches_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
};

// Synthetic data as in the seeds: one fixed random uint8 batch (normal(127, 60), clipped) and uniform labels,
// served every step, so benchmarks measure compute alone.
class SyntheticLoader {
 public:
  SyntheticLoader(int64_t batch_size, int image_size, int64_t num_classes, uint64_t seed);
  Batch next(int64_t epoch, int64_t index) const;

 private:
  torch::Tensor images_, labels_;
};

// (x / 255 - mean) / std as x * scale + shift per RGB channel, in float32: the constants normalize_images
// and the oneDNN plan's own input step (cpu/onednn_plan.h) both use.
struct PixelNormalization {
  std::array<float, 3> scale{}, shift{};
  bool operator==(const PixelNormalization&) const = default;
};
PixelNormalization pixel_normalization(const std::array<double, 3>& mean, const std::array<double, 3>& std);

// uint8 NHWC -> float NCHW (channels_last memory format), (x / 255 - mean) / std, on the batch's device, in
// one pass (a fused multiply-add per value); mean/std are per RGB channel on the 0..1 scale.
torch::Tensor normalize_images(const torch::Tensor& images_u8, const std::array<double, 3>& mean,
                               const std::array<double, 3>& std, torch::ScalarType dtype = torch::kFloat);

}  // namespace convnets
