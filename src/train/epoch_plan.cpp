#include "train/epoch_plan.h"

#include <stdexcept>

#include "train/lr_schedule.h"

namespace convnets {
namespace {
constexpr int64_t kSyntheticEpochImages = 1281167;  // the seeds' ImageNet train size
// More updates than any real run (a trillion): larger products of num_iter and the epoch length are typos.
constexpr int64_t kMaxUpdates = int64_t{1} << 40;
}  // namespace

EpochPlan EpochPlan::make(const RunConfig& config, std::optional<int64_t> train_images, int64_t world,
                          bool benchmark) {
  const IterationConfig& it = config.iterations;
  const int64_t k = config.optim.grad_accum_steps;
  EpochPlan p;
  p.world = world;
  p.global_batch = it.batch_size * world * k;
  int64_t available = 0;  // micro-batches the epoch's data holds
  if (train_images) {
    available = *train_images / world / it.batch_size;
  } else {
    available = it.iter_unit == IterUnit::kBatch && benchmark
                    ? it.num_iter * k
                    : kSyntheticEpochImages / (it.batch_size * world);
  }
  p.updates_per_epoch = available / k;
  if (p.updates_per_epoch < 1) {
    throw std::invalid_argument("batch_size " + std::to_string(it.batch_size) + " x grad_accum_steps " +
                                std::to_string(k) + " is larger than the " +
                                std::to_string(train_images.value_or(0)) + " training images");
  }
  p.micro_per_epoch = p.updates_per_epoch * k;
  p.total_updates = it.num_iter;
  if (it.iter_unit == IterUnit::kEpoch &&
      (__builtin_mul_overflow(it.num_iter, p.updates_per_epoch, &p.total_updates) ||
       p.total_updates > kMaxUpdates)) {
    throw std::invalid_argument("num_iter = " + std::to_string(it.num_iter) + " epochs x " +
                                std::to_string(p.updates_per_epoch) + " updates per epoch is more than " +
                                std::to_string(kMaxUpdates) + " updates");
  }
  if (p.total_updates > kMaxUpdates)
    throw std::invalid_argument("num_iter = " + std::to_string(it.num_iter) + " is more than " +
                                std::to_string(kMaxUpdates) + " updates");
  p.num_epochs = (p.total_updates + p.updates_per_epoch - 1) / p.updates_per_epoch;
  p.base_lr = scaled_learning_rate(config.optim.lr_init, p.global_batch, config.optim.lr_reference_batch);
  return p;
}

}  // namespace convnets
