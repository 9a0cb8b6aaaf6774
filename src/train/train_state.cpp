#include "train/train_state.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <string>

#include "util/state_dict.h"

namespace convnets {
namespace {

NamedTensors cpu_copy(const NamedTensors& tensors) {
  NamedTensors out;
  out.reserve(tensors.size());
  for (const auto& [n, t] : tensors) out.emplace_back(n, t.detach().to(torch::kCPU).contiguous().clone());
  return out;
}

// The loss scaler's state by name (older files wrote the same three names in this order).
constexpr const char* kScalerNames[] = {"scale", "growth_tracker", "skipped"};

std::unique_ptr<GradScaler> make_scaler(const RunConfig& config, const RunDevice& device) {
  if (!device.loss_scaling) return nullptr;
  GradScalerOptions so;
  if (config.precision.static_loss_scale > 0) {
    so.init_scale = config.precision.static_loss_scale;
    so.dynamic = false;
  }
  return std::make_unique<GradScaler>(so);
}

TrainStepOptions step_options(const RunConfig& config, const RunDevice& device) {
  TrainStepOptions o;
  o.accumulation_steps = static_cast<int>(config.optim.grad_accum_steps);
  o.grad_clip_norm = config.optim.grad_clip_norm;
  o.autocast_dtype = device.autocast;
  return o;
}

}  // namespace

TrainState::TrainState(ConvNetPtr model, const RunConfig& config, const RunDevice& device,
                       GradReducer* reducer)
    : model_(std::move(model)),
      optimizer_(make_optimizer(config.optim, *model_)),
      scaler_(make_scaler(config, device)),
      ema_(config.optim.ema_decay > 0 ? std::make_unique<ModelEma>(*model_, config.optim.ema_decay)
                                      : nullptr),
      step_(model_, *optimizer_, step_options(config, device), scaler_.get(), ema_.get()) {
  step_.set_reducer(reducer);
}

TensorSections TrainState::to_sections(const TrainPosition& at, const torch::Tensor& rank_rng_states) const {
  TensorSections s;
  s.emplace_back("state_dict", cpu_copy(state_dict(*model_)));
  if (ema_) s.emplace_back("ema_state_dict", cpu_copy(ema_->state()));
  s.emplace_back("optimizer", cpu_copy(optimizer_->state()));
  if (scaler_) {
    const auto st = scaler_->state();
    NamedTensors named;
    for (size_t i = 0; i < st.size() && i < std::size(kScalerNames); ++i)
      named.emplace_back(kScalerNames[i], st[i]);
    s.emplace_back("scaler", std::move(named));
  }
  if (rank_rng_states.defined()) {
    NamedTensors states;
    for (int64_t r = 0; r < rank_rng_states.size(0); ++r)
      states.emplace_back("cpu_rank" + std::to_string(r), rank_rng_states[r].clone());
    s.emplace_back("rng", std::move(states));
  } else {
    s.emplace_back("rng", NamedTensors{{"cpu", cpu_rng_state()}});
  }
  NamedTensors meta{{"epoch", torch::tensor(at.epoch, torch::kInt64)},
                    {"micro_batch", torch::tensor(at.micro_batch, torch::kInt64)},
                    {"updates", torch::tensor(at.updates, torch::kInt64)},
                    {"updates_per_epoch", torch::tensor(at.updates_per_epoch, torch::kInt64)},
                    {"total_updates", torch::tensor(at.total_updates, torch::kInt64)}};
  if (at.best_top1) meta.emplace_back("best_top1", torch::tensor(*at.best_top1, torch::kDouble));
  s.emplace_back("meta", std::move(meta));
  return s;
}

RestoredState TrainState::load(const TensorSections& ckpt, const std::string& path,
                               const ResumeExpectations& expect, int rank, int world) {
  RestoredState restored;
  restored.at = check_training_checkpoint(ckpt, path, expect);
  load_state_dict(*model_, section(ckpt, "state_dict"));
  optimizer_->load_state(section(ckpt, "optimizer"));
  if (ema_) ema_->load_state(section(ckpt, "ema_state_dict"));
  if (scaler_) {
    const NamedTensors& saved = section(ckpt, "scaler");
    std::vector<torch::Tensor> st;
    for (const char* name : kScalerNames) {
      const auto it =
          std::find_if(saved.begin(), saved.end(), [&](const auto& kv) { return kv.first == name; });
      if (it == saved.end())
        throw std::runtime_error("checkpoint '" + path + "': the scaler section has no '" + name + "'");
      st.push_back(it->second);
    }
    scaler_->load_state(st);
  }
  // Each rank continues its own stream; a checkpoint from another world size restarts them from the first.
  const NamedTensors& rng = section(ckpt, "rng");
  const bool same_world = world > 1 && rng.size() == static_cast<size_t>(world) &&
                          rng[static_cast<size_t>(rank)].first == "cpu_rank" + std::to_string(rank);
  set_cpu_rng_state(same_world ? rng[static_cast<size_t>(rank)].second : rng[0].second);
  for (const auto& [n, t] : section(ckpt, "meta")) {
    if (n == "best_top1" && t.numel() == 1) restored.best_top1 = t.item<double>();
  }
  step_.set_updates(restored.at.updates);
  return restored;
}

}  // namespace convnets
