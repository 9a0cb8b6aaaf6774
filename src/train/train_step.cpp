#include "train/train_step.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "run/autocast.h"
#include "train/loss.h"

namespace convnets {

TrainStep::TrainStep(ConvNetPtr model, Optimizer& optimizer, const TrainStepOptions& options,
                     GradScaler* scaler, ModelEma* ema)
    : model_(std::move(model)), optimizer_(optimizer), options_(options), scaler_(scaler), ema_(ema) {
  TORCH_CHECK(options_.accumulation_steps >= 1, "accumulation steps must be >= 1");
  for (const auto& g : optimizer_.groups()) params_.insert(params_.end(), g.params.begin(), g.params.end());
}

MicroStepResult TrainStep::micro_step(const torch::Tensor& images, const torch::Tensor& targets, double lr) {
  MicroStepResult result;
  torch::Tensor loss;
  {
    AutocastGuard autocast(images.device().type(), options_.autocast_dtype);
    loss = soft_cross_entropy(model_->forward(images), targets);
  }
  result.loss = loss.detach();
  torch::Tensor scaled = loss / options_.accumulation_steps;
  if (scaler_) scaled = scaler_->scale(scaled);
  const bool last_micro = micro_ + 1 == options_.accumulation_steps;
  if (reducer_) reducer_->set_sync(last_micro);
  scaled.backward();
  if (!last_micro) {
    ++micro_;
    result.updates = updates_;
    return result;
  }
  micro_ = 0;
  if (reducer_) reducer_->finish();
  result.updated = true;
  bool finite = true;
  if (scaler_) finite = scaler_->unscale(params_);
  if (finite) {
    if (options_.grad_clip_norm > 0) torch::nn::utils::clip_grad_norm_(params_, options_.grad_clip_norm);
    optimizer_.step(lr);
    ++updates_;
    if (ema_) ema_->update(*model_, updates_);
  } else {
    result.skipped = true;
  }
  if (scaler_) scaler_->update();
  optimizer_.zero_grad();
  result.updates = updates_;
  return result;
}

}  // namespace convnets
