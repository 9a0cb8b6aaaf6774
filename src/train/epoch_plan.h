// How long a training run is: micro-batches and optimizer updates per epoch, total updates and epochs, the
// global batch and the linearly scaled learning rate, all checked for overflow before anything runs.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "run/config.h"

namespace convnets {

struct EpochPlan {
  int64_t world = 1;              // data-parallel ranks
  int64_t global_batch = 0;       // batch_size x world x grad_accum_steps
  int64_t updates_per_epoch = 0;  // whole updates of the epoch (a partial last one is dropped)
  int64_t micro_per_epoch = 0;    // micro-batches of the epoch that make those updates
  int64_t total_updates = 0;
  int64_t num_epochs = 0;
  double base_lr = 0;  // lr_init scaled to the global batch

  // `train_images`: the train split's size; nullopt for synthetic data (an epoch is ImageNet's 1,281,167
  // images, or with `benchmark` and iter_unit batch, exactly num_iter updates). Throws std::invalid_argument
  // naming the keys when a batch is larger than the data or the run would exceed 2^40 updates.
  static EpochPlan make(const RunConfig& config, std::optional<int64_t> train_images, int64_t world,
                        bool benchmark);
};

}  // namespace convnets
