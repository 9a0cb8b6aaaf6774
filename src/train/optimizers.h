// The recipes' optimizers with their exact update rules, on parameter groups with their own L2 coefficient
// (coupled weight decay: g += wd * w, as TF's l2 loss terms do). Updates use ATen's _foreach kernels.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "run/config.h"
#include "util/state_dict.h"

namespace convnets {

struct ParamGroup {
  std::vector<torch::Tensor> params;
  double weight_decay = 0.0;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {}
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` from the parameters' .grad(); parameters without a gradient are
  // skipped.
  virtual void step(double lr) = 0;
  void zero_grad();
  const std::vector<ParamGroup>& groups() const { return groups_; }
  // Per-parameter state for checkpoints ("<slot>.<group>.<index>" plus counters); load_state restores it
  // exactly, so that a resumed run continues bit for bit.
  NamedTensors state() const;
  void load_state(const NamedTensors& state);

 protected:
  // Named state slots (one tensor list per group), filled lazily with zeros on the first step.
  virtual std::vector<std::pair<std::string, std::vector<std::vector<torch::Tensor>>*>> state_slots() = 0;
  virtual int64_t* counter() { return nullptr; }
  std::vector<ParamGroup> groups_;
};

// TF1 MomentumOptimizer = torch SGD (dampening 0): accum = m * accum + g; w -= lr * accum.
class MomentumSgd : public Optimizer {
 public:
  MomentumSgd(std::vector<ParamGroup> groups, double momentum, bool nesterov = false);
  void step(double lr) override;

 protected:
  std::vector<std::pair<std::string, std::vector<std::vector<torch::Tensor>>*>> state_slots() override {
    return {{"momentum", &accum_}};
  }

 private:
  double momentum_;
  bool nesterov_;
  std::vector<std::vector<torch::Tensor>> accum_;
};

// Keras RMSprop: ms = rho * ms + (1 - rho) g^2 (ms starts at 0); mom = m * mom + lr * g / sqrt(ms + eps);
// w -= mom. Epsilon inside the square root, unlike torch.optim.RMSprop.
class KerasRmsprop : public Optimizer {
 public:
  KerasRmsprop(std::vector<ParamGroup> groups, double rho, double momentum, double epsilon);
  void step(double lr) override;

 protected:
  std::vector<std::pair<std::string, std::vector<std::vector<torch::Tensor>>*>> state_slots() override {
    return {{"mean_square", &mean_square_}, {"moment", &moment_}};
  }

 private:
  double rho_, momentum_, epsilon_;
  std::vector<std::vector<torch::Tensor>> mean_square_, moment_;
};

// torch.optim.AdamW (decoupled decay, bias-corrected, no amsgrad); the group's weight_decay is AdamW's.
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8);
  void step(double lr) override;

 protected:
  std::vector<std::pair<std::string, std::vector<std::vector<torch::Tensor>>*>> state_slots() override {
    return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}};
  }
  int64_t* counter() override { return &t_; }

 private:
  double beta1_, beta2_, epsilon_;
  int64_t t_ = 0;
  std::vector<std::vector<torch::Tensor>> m_, v_;
};

// The optimizer a run trains with (the config's update rule and weight-decay groups over `model`).
std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& config, const torch::nn::Module& model);

}  // namespace convnets
