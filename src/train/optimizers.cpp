#include "train/optimizers.h"

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_sqrt.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <map>
#include <stdexcept>

#include "train/param_groups.h"

namespace convnets {
namespace {

// Parameters of `group` that have a gradient, their gradients (+ wd * w when `coupled_decay`), and the
// matching state slots (created as zeros on first use).
struct Active {
  std::vector<torch::Tensor> params, grads;
  std::vector<size_t> index;
};
Active active(const ParamGroup& group, bool coupled_decay) {
  Active a;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const auto& p = group.params[i];
    if (!p.grad().defined()) continue;
    a.params.push_back(p);
    a.grads.push_back(p.grad());
    a.index.push_back(i);
  }
  if (coupled_decay && group.weight_decay != 0.0 && !a.params.empty()) {
    a.grads = at::_foreach_add(a.grads, a.params, group.weight_decay);
  }
  return a;
}

std::vector<torch::Tensor> slots(std::vector<torch::Tensor>& state, const ParamGroup& group,
                                 const Active& a) {
  if (state.empty()) {
    for (const auto& p : group.params) state.push_back(torch::zeros_like(p, at::MemoryFormat::Preserve));
  }
  std::vector<torch::Tensor> out;
  for (size_t i : a.index) out.push_back(state[i]);
  return out;
}

}  // namespace

void Optimizer::zero_grad() {
  for (auto& g : groups_) {
    for (auto& p : g.params) {
      if (p.grad().defined()) p.mutable_grad().reset();
    }
  }
}

NamedTensors Optimizer::state() const {
  NamedTensors out;
  auto* self = const_cast<Optimizer*>(this);  // slots() hands out pointers; nothing is modified here
  for (auto& [name, lists] : self->state_slots()) {
    for (size_t g = 0; g < lists->size(); ++g) {
      for (size_t i = 0; i < (*lists)[g].size(); ++i) {
        out.emplace_back(name + "." + std::to_string(g) + "." + std::to_string(i), (*lists)[g][i]);
      }
    }
  }
  if (int64_t* t = self->counter()) out.emplace_back("step", torch::tensor(*t, torch::kInt64));
  return out;
}

void Optimizer::load_state(const NamedTensors& state) {
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  for (auto& [name, lists] : state_slots()) {
    for (size_t g = 0; g < groups_.size(); ++g) {
      std::vector<torch::Tensor>& slot = (*lists)[g];
      slot.clear();
      for (size_t i = 0; i < groups_[g].params.size(); ++i) {
        const std::string key = name + "." + std::to_string(g) + "." + std::to_string(i);
        auto it = by_name.find(key);
        if (it == by_name.end()) {
          if (i == 0) break;  // this group had not stepped yet: its slots stay lazy
          throw std::runtime_error("optimizer state lacks '" + key + "'");
        }
        TORCH_CHECK(it->second.sizes() == groups_[g].params[i].sizes(), "optimizer state '", key,
                    "' does not match its parameter's shape");
        slot.push_back(it->second.to(groups_[g].params[i].options()).clone());
      }
    }
  }
  if (int64_t* t = counter()) {
    auto it = by_name.find("step");
    if (it == by_name.end()) throw std::runtime_error("optimizer state lacks 'step'");
    *t = it->second.item<int64_t>();
  }
}

MomentumSgd::MomentumSgd(std::vector<ParamGroup> groups, double momentum, bool nesterov)
    : Optimizer(std::move(groups)), momentum_(momentum), nesterov_(nesterov), accum_(groups_.size()) {}

void MomentumSgd::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Active a = active(groups_[g], /*coupled_decay=*/true);
    if (a.params.empty()) continue;
    auto accum = slots(accum_[g], groups_[g], a);
    at::_foreach_mul_(accum, momentum_);
    at::_foreach_add_(accum, a.grads);
    if (nesterov_) {
      at::_foreach_add_(a.params, at::_foreach_add(a.grads, accum, momentum_), -lr);
    } else {
      at::_foreach_add_(a.params, accum, -lr);
    }
  }
}

KerasRmsprop::KerasRmsprop(std::vector<ParamGroup> groups, double rho, double momentum, double epsilon)
    : Optimizer(std::move(groups)),
      rho_(rho),
      momentum_(momentum),
      epsilon_(epsilon),
      mean_square_(groups_.size()),
      moment_(groups_.size()) {}

void KerasRmsprop::step(double lr) {
  torch::NoGradGuard no_grad;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Active a = active(groups_[g], /*coupled_decay=*/true);
    if (a.params.empty()) continue;
    auto ms = slots(mean_square_[g], groups_[g], a);
    auto mom = slots(moment_[g], groups_[g], a);
    at::_foreach_mul_(ms, rho_);
    at::_foreach_addcmul_(ms, a.grads, a.grads, 1.0 - rho_);
    const auto denom = at::_foreach_sqrt(at::_foreach_add(ms, epsilon_));
    at::_foreach_mul_(mom, momentum_);
    at::_foreach_addcdiv_(mom, a.grads, denom, lr);
    at::_foreach_add_(a.params, mom, -1.0);
  }
}

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double epsilon)
    : Optimizer(std::move(groups)),
      beta1_(beta1),
      beta2_(beta2),
      epsilon_(epsilon),
      m_(groups_.size()),
      v_(groups_.size()) {}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++t_;
  const double bias1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(beta2_, static_cast<double>(t_)));
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Active a = active(groups_[g], /*coupled_decay=*/false);
    if (a.params.empty()) continue;
    if (groups_[g].weight_decay != 0.0) at::_foreach_mul_(a.params, 1.0 - lr * groups_[g].weight_decay);
    auto m = slots(m_[g], groups_[g], a);
    auto v = slots(v_[g], groups_[g], a);
    at::_foreach_mul_(m, beta1_);
    at::_foreach_add_(m, a.grads, 1.0 - beta1_);
    at::_foreach_mul_(v, beta2_);
    at::_foreach_addcmul_(v, a.grads, a.grads, 1.0 - beta2_);
    auto denom = at::_foreach_div(at::_foreach_sqrt(v), bias2_sqrt);
    at::_foreach_add_(denom, epsilon_);
    at::_foreach_addcdiv_(a.params, m, denom, -lr / bias1);
  }
}

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& c, const torch::nn::Module& model) {
  const DecayPolicy policy = c.weight_decay_exclude == WeightDecayExclude::kBatchNormAndDepthwise
                                 ? DecayPolicy::kAllButBatchNormAndDepthwise
                                 : DecayPolicy::kAllButBatchNorm;
  auto groups = weight_decay_groups(model, policy, c.weight_decay);
  switch (c.optimizer) {
    case OptimizerKind::kRmsprop:
      return std::make_unique<KerasRmsprop>(groups, c.rmsprop_rho, c.momentum, c.opt_epsilon);
    case OptimizerKind::kAdamw:
      return std::make_unique<AdamW>(groups, c.beta1, c.beta2, c.opt_epsilon);
    case OptimizerKind::kMomentum:
      break;
  }
  return std::make_unique<MomentumSgd>(groups, c.momentum, c.nesterov);
}

}  // namespace convnets
