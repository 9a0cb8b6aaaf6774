#include "dist/data_parallel.h"

#include <torch/types.h>
#include <torch/utils.h>

namespace convnets {

DataParallel::DataParallel(const DistEnv& env, const torch::Device& device,
                           const DataParallelOptions& options)
    : group_(ProcessGroup::create(env, device, options.group)), options_(options) {}

DataParallel::~DataParallel() {
  reducer_.reset();  // its hooks go before the group
  if (model_ && sync_) set_batch_statistics(*model_, nullptr);
}

void DataParallel::attach(std::shared_ptr<torch::nn::Module> model) {
  if (model_) throw std::logic_error("DataParallel::attach: a model is already attached");
  model_ = std::move(model);
  broadcast_module_state(*model_, *group_);  // one starting point, whatever each rank drew
  std::vector<torch::Tensor> trainable;
  for (const auto& p : model_->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  reducer_ = std::make_unique<GradReducer>(trainable, *group_, options_.reducer);
  if (options_.sync_batch_norm) sync_ = use_sync_batch_norm(*model_, *group_);
}

void DataParallel::average_buffers(const NamedTensors& more_running_statistics) {
  if (model_) average_module_buffers(*model_, *group_);
  std::vector<torch::Tensor> running;
  for (const auto& [name, t] : more_running_statistics) {
    if (t.is_floating_point() && (name.ends_with("running_mean") || name.ends_with("running_var")))
      running.push_back(t);
  }
  average_tensors(running, *group_);
}

}  // namespace convnets
