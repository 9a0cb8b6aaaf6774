#include "data/loader.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstring>

#include "data/jpeg_codec.h"
#include "data/sharding.h"

namespace convnets {

Loader::Loader(std::shared_ptr<const ImageSource> dataset, const LoaderOptions& options)
    : dataset_(std::move(dataset)), options_(options) {
  if (options_.batch_size < 1) throw std::invalid_argument("batch size must be >= 1");
  if (options_.workers < 1) throw std::invalid_argument("loader workers must be >= 1");
  if (options_.prefetch < 1) throw std::invalid_argument("prefetch depth must be >= 1");
  pinned_ = options_.pin_memory && torch::cuda::is_available();
  if (batches_per_epoch() == 0) {
    throw std::runtime_error("dataset of " + std::to_string(dataset_->size()) +
                             " records gives no batch of " + std::to_string(options_.batch_size) +
                             " for rank " + std::to_string(options_.rank) + " of " +
                             std::to_string(options_.world_size));
  }
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : threads_) t.join();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = dataset_->size();
  const int64_t per_rank = options_.train
                               ? n / options_.world_size
                               : (n - options_.rank + options_.world_size - 1) / options_.world_size;
  return options_.train ? per_rank / options_.batch_size
                        : (per_rank + options_.batch_size - 1) / options_.batch_size;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  dataset_->new_epoch();
  ShardPlan plan{options_.seed, epoch, options_.rank, options_.world_size, options_.train, options_.train};
  auto order = std::make_shared<const std::vector<int64_t>>(shard_indices(dataset_->size(), plan));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    num_batches_ = batches_per_epoch();
    next_to_schedule_ = next_to_deliver_ = std::clamp<int64_t>(first_batch, 0, num_batches_);
    ready_.clear();
    error_ = nullptr;
  }
  work_ready_.notify_all();
}

std::optional<Batch> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (epoch_ < 0) throw std::logic_error("Loader::next before start_epoch");
  // An eval batch whose records were all bad comes out empty: it was counted (skipped_records) and is passed
  // over here, so no consumer ever meets a batch of zero images.
  while (next_to_deliver_ < num_batches_) {
    batch_ready_.wait(lock, [&] { return error_ || ready_.count(next_to_deliver_); });
    if (error_) std::rethrow_exception(error_);
    Batch batch = std::move(ready_.at(next_to_deliver_));
    ready_.erase(next_to_deliver_++);
    work_ready_.notify_all();  // the window moved
    if (batch.labels.size(0) > 0) return batch;
  }
  return std::nullopt;
}

void Loader::worker_loop() {
  const int64_t window = static_cast<int64_t>(options_.workers) * options_.prefetch;
  while (true) {
    int64_t index, epoch;
    uint64_t generation;
    std::shared_ptr<const std::vector<int64_t>> order;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [&] {
        return stopping_ ||
               (order_ && next_to_schedule_ < num_batches_ && next_to_schedule_ < next_to_deliver_ + window);
      });
      if (stopping_) return;
      index = next_to_schedule_++;
      epoch = epoch_;
      generation = generation_;
      order = order_;
    }
    try {
      Batch batch = make_batch(epoch, index, *order);
      std::lock_guard<std::mutex> lock(mutex_);
      if (generation == generation_) ready_.emplace(index, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (generation == generation_ && !error_) error_ = std::current_exception();
    }
    batch_ready_.notify_all();
  }
}

bool Loader::load_sample(int64_t record, int64_t epoch, uint8_t* out, int64_t& label) const {
  ImageRecord r;
  std::string storage;
  if (!dataset_->get(record, r, storage)) return false;
  try {
    ImageU8 img;
    if (options_.train) {
      Rng rng(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(record));
      img = train_transform(r.encoded, r.boxes, options_.train_transform, rng);
    } else {
      img = eval_transform(r.encoded, options_.eval_transform);
    }
    std::memcpy(out, img.pixels.data(), img.pixels.size());
  } catch (const ImageDecodeError& e) {
    dataset_->report_bad(record, e.what());
    return false;
  }
  label = r.label;
  return true;
}

Batch Loader::make_batch(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const {
  const int size = options_.train ? options_.train_transform.size : options_.eval_transform.size;
  const int64_t begin = index * options_.batch_size;
  const int64_t count = std::min<int64_t>(options_.batch_size, static_cast<int64_t>(order.size()) - begin);
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned_);
  torch::Tensor images = torch::empty({count, size, size, 3}, u8);
  torch::Tensor labels =
      torch::empty({count}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(pinned_));
  auto* pixels = images.data_ptr<uint8_t>();
  auto* label_out = labels.data_ptr<int64_t>();
  const int64_t image_bytes = static_cast<int64_t>(size) * size * 3;
  int64_t filled = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t position = begin + i;
    if (load_sample(order[static_cast<size_t>(position)], epoch, pixels + filled * image_bytes,
                    label_out[filled])) {
      ++filled;
      continue;
    }
    if (!options_.train) continue;  // eval: a bad record is counted and left out
    // Train: substitute the next good record of this rank's order (deterministically), keeping shapes fixed.
    bool found = false;
    for (int64_t k = 1; k < static_cast<int64_t>(order.size()) && !found; ++k) {
      const int64_t candidate =
          order[static_cast<size_t>((position + k) % static_cast<int64_t>(order.size()))];
      found = load_sample(candidate, epoch, pixels + filled * image_bytes, label_out[filled]);
    }
    if (!found) throw std::runtime_error("no readable record left to fill a training batch");
    ++filled;
  }
  if (filled < count) {
    images = images.narrow(0, 0, filled);
    labels = labels.narrow(0, 0, filled);
  }
  return {images, labels, epoch, index};
}

SyntheticLoader::SyntheticLoader(int64_t batch_size, int image_size, int64_t num_classes, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  images_ =
      (torch::randn({batch_size, image_size, image_size, 3}, gen) * 60 + 127).clamp(0, 255).to(torch::kUInt8);
  labels_ = torch::randint(0, num_classes, {batch_size}, gen, torch::kInt64);
}

Batch SyntheticLoader::next(int64_t epoch, int64_t index) const {
  return {images_, labels_, epoch, index};
}

PixelNormalization pixel_normalization(const std::array<double, 3>& mean, const std::array<double, 3>& std) {
  PixelNormalization n;
  for (size_t c = 0; c < 3; ++c) {
    n.scale[c] = static_cast<float>(1.0 / (255 * std[c]));
    n.shift[c] = static_cast<float>(-mean[c] / std[c]);
  }
  return n;
}

torch::Tensor normalize_images(const torch::Tensor& images_u8, const std::array<double, 3>& mean,
                               const std::array<double, 3>& std, torch::ScalarType dtype) {
  TORCH_CHECK(images_u8.dim() == 4 && images_u8.size(3) == 3 && images_u8.scalar_type() == torch::kUInt8,
              "normalize_images expects uint8 [N, H, W, 3]");
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(images_u8.device());
  // The NHWC -> NCHW permute of an NHWC buffer is already channels_last, so no copy is made for the layout.
  const PixelNormalization n = pixel_normalization(mean, std);
  const torch::Tensor scale = torch::tensor({n.scale[0], n.scale[1], n.scale[2]}, opts);
  const torch::Tensor shift = torch::tensor({n.shift[0], n.shift[1], n.shift[2]}, opts);
  return torch::addcmul(shift, images_u8.to(torch::kFloat), scale).to(dtype).permute({0, 3, 1, 2});
}

}  // namespace convnets
