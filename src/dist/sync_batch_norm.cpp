#include "dist/sync_batch_norm.h"

#include <torch/autograd.h>

namespace convnets {
namespace {

// Sum over ranks as an autograd op: every rank's loss depends on every rank's local sums, so the gradient
// reaching a rank's local sums is the sum of the gradients all ranks computed for the global sums.
class AllReduceSum : public torch::autograd::Function<AllReduceSum> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local,
                               ProcessGroup* group) {
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    torch::Tensor global = local.clone();
    group->all_reduce_sum(global);
    return global;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    torch::Tensor g = grads[0].contiguous().clone();
    group->all_reduce_sum(g);
    return {g, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sync_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, ProcessGroup& group) {
  if (!bn.is_training()) return bn.forward(x);
  TORCH_CHECK(x.dim() == 4, "sync_batch_norm expects NCHW input, got ", x.dim(), " dimensions");
  const auto& o = bn.options;
  // Statistics in fp32 whatever the activation dtype (as cuDNN's batch norm does under autocast), as sums of
  // x - c and (x - c)^2 with c = the running mean, equal on every rank: near the batch mean, so the
  // variance E[(x-c)^2] - E[x-c]^2 does not cancel catastrophically.
  const torch::Tensor xf = x.to(torch::kFloat);
  const int64_t channels = xf.size(1);
  const auto shape = std::vector<int64_t>{1, channels, 1, 1};
  const torch::Tensor shift = o.track_running_stats() ? bn.running_mean.detach().to(torch::kFloat).clone()
                                                      : torch::zeros({channels}, xf.options());
  const torch::Tensor centred = xf - shift.view(shape);
  const torch::Tensor local =
      torch::cat({centred.sum({0, 2, 3}), centred.square().sum({0, 2, 3}),
                  torch::full({1}, static_cast<double>(xf.numel() / channels), xf.options())});
  const torch::Tensor global = AllReduceSum::apply(local, &group);
  const torch::Tensor n = global.narrow(0, 2 * channels, 1).detach();  // values per channel, all ranks
  const torch::Tensor mean_c = global.narrow(0, 0, channels) / n;
  const torch::Tensor var = (global.narrow(0, channels, channels) / n - mean_c.square()).clamp_min(0);
  {
    torch::NoGradGuard no_grad;
    if (o.track_running_stats()) {
      bn.num_batches_tracked.add_(1);
      // momentum None: a cumulative average, as PyTorch's BatchNorm
      const double m = o.momentum() ? *o.momentum() : 1.0 / bn.num_batches_tracked.item<double>();
      const torch::Tensor batch_mean = mean_c.detach() + shift;
      bn.running_mean.mul_(1 - m).add_(batch_mean.to(bn.running_mean.scalar_type()), m);
      bn.running_var.mul_(1 - m).add_((var.detach() * n / (n - 1)).to(bn.running_var.scalar_type()), m);
    }
  }
  torch::Tensor y = (centred - mean_c.view(shape)) * torch::rsqrt(var.view(shape) + o.eps());
  if (o.affine()) y = y * bn.weight.view(shape) + bn.bias.view(shape);
  return y.to(x.scalar_type());
}

SyncBatchNormScope::SyncBatchNormScope(ProcessGroup& group)
    : previous_(set_batch_norm_hook([&group](torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
        return sync_batch_norm(bn, x, group);
      })) {}

SyncBatchNormScope::~SyncBatchNormScope() {
  set_batch_norm_hook(std::move(previous_));
}

}  // namespace convnets
