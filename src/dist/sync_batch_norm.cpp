#include "dist/sync_batch_norm.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/types.h>
#include <torch/utils.h>

namespace convnets {
namespace {

// Sum over ranks as an autograd node: every rank's loss depends on every rank's local sums, so the gradient
// reaching a rank's local sums is the sum of the gradients all ranks computed for the global sums. The node
// holds the group it reduces over (no pointer travels through saved tensors).
class AllReduceSumBackward : public torch::autograd::Node {
 public:
  explicit AllReduceSumBackward(ProcessGroup& group) : group_(group) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    torch::Tensor g = grads[0].contiguous().clone();
    group_.all_reduce_sum(g);
    return {g};
  }
  std::string name() const override { return "AllReduceSumBackward"; }

 private:
  ProcessGroup& group_;
};

torch::Tensor all_reduce_sum_differentiable(const torch::Tensor& local, ProcessGroup& group) {
  torch::Tensor global = local.detach().clone();
  group.all_reduce_sum(global);
  if (torch::autograd::compute_requires_grad(local)) {
    std::shared_ptr<AllReduceSumBackward> node(new AllReduceSumBackward(group), torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(local));
    torch::autograd::set_history(global, node);
  }
  return global;
}

}  // namespace

torch::Tensor SyncBatchStatistics::forward(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SyncBatchNorm expects NCHW input, got ", x.dim(), " dimensions");
  const auto& o = bn.options;
  // Statistics in (at least) fp32 whatever the activation dtype (as cuDNN's batch norm does under autocast).
  // Each rank computes its own mean and variance in two passes, then every rank receives all of them (an
  // all-gather done as a sum of zero-padded rows, so the rows arrive exactly) and combines them the same way
  // (Chan et al.): var = sum n_r (var_r + (mean_r - mean)^2) / N. Unlike E[x^2] - E[x]^2 this does not cancel
  // when the mean is large against the spread (dark image backgrounds, the first steps before the running
  // mean has moved).
  const torch::Tensor xf = x.to(x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat);
  const int64_t channels = xf.size(1);
  const auto shape = std::vector<int64_t>{1, channels, 1, 1};
  const double count = static_cast<double>(xf.numel() / channels);
  auto [local_var, local_mean] = torch::var_mean(xf, {0, 2, 3}, /*correction=*/0);
  const torch::Tensor row = torch::cat({local_mean, local_var, torch::full({1}, count, xf.options())});
  torch::Tensor mine = torch::zeros({group_.size(), 1}, xf.options());
  mine[group_.rank()] = 1.0;
  const torch::Tensor rows = mine * row.unsqueeze(0);  // this rank's row, zeros elsewhere (exact)
  const torch::Tensor all = all_reduce_sum_differentiable(rows, group_);
  const torch::Tensor means = all.narrow(1, 0, channels), vars = all.narrow(1, channels, channels);
  const torch::Tensor counts = all.narrow(1, 2 * channels, 1).detach();  // [ranks, 1]
  const torch::Tensor n = counts.sum();
  const torch::Tensor mean = (means * counts).sum(0) / n;
  const torch::Tensor var = ((vars + (means - mean).square()) * counts).sum(0) / n;
  {
    torch::NoGradGuard no_grad;
    if (o.track_running_stats()) {
      bn.num_batches_tracked.add_(1);
      // momentum None: a cumulative average, as PyTorch's BatchNorm
      const double m = o.momentum() ? *o.momentum() : 1.0 / bn.num_batches_tracked.item<double>();
      bn.running_mean.mul_(1 - m).add_(mean.detach().to(bn.running_mean.scalar_type()), m);
      bn.running_var.mul_(1 - m).add_((var.detach() * n / (n - 1)).to(bn.running_var.scalar_type()), m);
    }
  }
  torch::Tensor y = (xf - mean.view(shape)) * torch::rsqrt(var.view(shape) + o.eps());
  if (o.affine()) y = y * bn.weight.view(shape) + bn.bias.view(shape);
  return y.to(x.scalar_type());
}

std::shared_ptr<SyncBatchStatistics> use_sync_batch_norm(torch::nn::Module& model, ProcessGroup& group) {
  auto statistics = std::make_shared<SyncBatchStatistics>(group);
  set_batch_statistics(model, statistics);
  return statistics;
}

}  // namespace convnets
