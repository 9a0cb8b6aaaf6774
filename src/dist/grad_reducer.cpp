#include "dist/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/types.h>
#include <torch/utils.h>

namespace convnets {
namespace {

class ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  explicit ReadyHook(std::function<void()> fn) : fn_(std::move(fn)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    fn_();
    return outputs;
  }

 private:
  std::function<void()> fn_;
};

torch::ScalarType wire_dtype(GradCompression compression, torch::ScalarType grad_dtype) {
  switch (compression) {
    case GradCompression::kFp16:
      return torch::kHalf;
    case GradCompression::kBf16:
      return torch::kBFloat16;
    case GradCompression::kNone:
      break;
  }
  return grad_dtype;
}

// Flattens same-dtype tensors, applies `op` to the flat copy, and copies the result back.
void flat_apply(const std::vector<torch::Tensor>& tensors, const std::function<void(torch::Tensor&)>& op) {
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const auto& t : tensors) by_dtype[t.scalar_type()].push_back(t);
  for (auto& [dtype, ts] : by_dtype) {
    std::vector<torch::Tensor> flat_parts;
    for (const auto& t : ts) flat_parts.push_back(t.detach().reshape(-1));
    torch::Tensor flat = torch::cat(flat_parts);
    op(flat);
    int64_t offset = 0;
    torch::NoGradGuard no_grad;
    for (auto& t : ts) {
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace

GradReducer::GradReducer(std::vector<torch::Tensor> params, ProcessGroup& group,
                         const GradReducerOptions& options)
    : params_(std::move(params)), group_(group), options_(options) {
  bucket_of_.assign(params_.size(), 0);
  int64_t bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const auto& p = params_[i];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fresh = buckets_.empty() || bytes + b > options_.bucket_bytes ||
                       params_[buckets_.back().params.front()].scalar_type() != p.scalar_type() ||
                       params_[buckets_.back().params.front()].device() != p.device();
    if (fresh) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(i);
    bytes += b;
    bucket_of_[i] = buckets_.size() - 1;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[i]);
    TORCH_CHECK(acc, "GradReducer: parameter ", i, " does not require grad");
    const uintptr_t key = acc->add_post_hook(std::make_unique<ReadyHook>([this, i] { on_grad_ready(i); }));
    hooks_.emplace_back(acc, key);
  }
}

GradReducer::~GradReducer() {
  for (auto& [acc, key] : hooks_) acc->del_post_hook(key);
}

void GradReducer::on_grad_ready(size_t param) {
  if (!sync_) return;
  Bucket& b = buckets_[bucket_of_[param]];
  ++b.arrived;
  // Launch in bucket order only, so every rank issues the same collectives in the same order.
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].arrived == buckets_[next_launch_].params.size()) {
    launch(next_launch_++);
  }
}

void GradReducer::launch(size_t index) {
  Bucket& b = buckets_[index];
  std::vector<torch::Tensor> parts;
  parts.reserve(b.params.size());
  for (size_t i : b.params) {
    const auto& g = params_[i].grad();
    parts.push_back(g.defined() ? g.detach().reshape(-1)
                                : torch::zeros({params_[i].numel()}, params_[i].options()));
  }
  torch::Tensor flat = torch::cat(parts);
  const auto wire = wire_dtype(options_.compression, flat.scalar_type());
  // Divide before the sum so that fp16 on the wire does not overflow.
  flat.div_(static_cast<double>(group_.size()));
  if (wire != flat.scalar_type()) flat = flat.to(wire);
  b.flat = flat;
  b.pending = group_.all_reduce_sum_async(flat);
}

void GradReducer::finish() {
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    int64_t offset = 0;
    for (size_t i : b.params) {
      auto& p = params_[i];
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(b.flat.narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
    b.flat = torch::Tensor();
    b.arrived = 0;
  }
  next_launch_ = 0;
}

void broadcast_module_state(torch::nn::Module& module, ProcessGroup& group) {
  std::vector<torch::Tensor> all;
  for (const auto& p : module.parameters()) all.push_back(p);
  for (const auto& b : module.buffers()) all.push_back(b);
  flat_apply(all, [&](torch::Tensor& flat) { group.broadcast(flat, 0); });
}

void average_module_buffers(torch::nn::Module& module, ProcessGroup& group) {
  std::vector<torch::Tensor> floats;
  for (const auto& b : module.buffers()) {
    if (b.is_floating_point()) floats.push_back(b);
  }
  average_tensors(floats, group);
}

void average_tensors(const std::vector<torch::Tensor>& floats, ProcessGroup& group) {
  if (floats.empty()) return;
  flat_apply(floats, [&](torch::Tensor& flat) {
    group.all_reduce_sum(flat);
    flat.div_(static_cast<double>(group.size()));
  });
}

}  // namespace convnets
