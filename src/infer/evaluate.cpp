#include "infer/evaluate.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>

#include "train/autocast.h"

namespace convnets {

EvalResult sum_over_ranks(const EvalResult& local, ProcessGroup& group) {
  const auto v = group.sum({static_cast<double>(local.images), static_cast<double>(local.correct1),
                            static_cast<double>(local.correct5), local.loss_sum, local.images_per_second,
                            static_cast<double>(local.skipped_records)});
  EvalResult r = local;
  r.images = static_cast<int64_t>(v[0]);
  r.skipped_records = static_cast<int64_t>(v[5]);
  r.correct1 = static_cast<int64_t>(v[1]);
  r.correct5 = static_cast<int64_t>(v[2]);
  r.loss_sum = v[3];
  r.images_per_second = v[4];
  if (r.images == 0) throw std::runtime_error("evaluation: the eval split gave no images on any rank");
  r.top1 = static_cast<double>(r.correct1) / static_cast<double>(r.images);
  r.top5 = static_cast<double>(r.correct5) / static_cast<double>(r.images);
  r.loss = r.loss_sum / static_cast<double>(r.images);
  return r;
}

EvalResult evaluate(ConvNetImpl& model, Loader& loader, const RunDevice& device, const ResolvedData& data,
                    const EvalOptions& options) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  const int64_t total = loader.batches_per_epoch();
  EvalResult r;
  torch::Tensor correct1 = torch::zeros({}, torch::dtype(torch::kInt64).device(device.device));
  torch::Tensor correct5 = correct1.clone();
  torch::Tensor loss_sum = torch::zeros({}, torch::dtype(torch::kDouble).device(device.device));
  std::vector<double> batch_ms;
  int64_t timed_images = 0;
  double timed_seconds = 0;
  int64_t index = 0;
  auto sync = [&] {
    if (device.device.is_cuda()) torch::cuda::synchronize();
  };
  while (true) {
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Batch> batch = loader.next();
    if (!batch) break;
    auto [images, labels] = batch_to_device(*batch, device, data);
    torch::Tensor logits;
    {
      AutocastGuard autocast(device.device.type(), device.autocast);
      logits = model.forward(images).to(torch::kFloat);
    }
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    const torch::Tensor top = std::get<1>(logits.topk(k, 1));
    const torch::Tensor hits = top.eq(labels.unsqueeze(1));
    correct1 += hits.select(1, 0).sum();
    correct5 += hits.any(1).sum();
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(torch::kDouble);
    sync();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.images += labels.size(0);
    if (index >= options.warmup_batches) {
      batch_ms.push_back(seconds * 1e3);
      timed_images += labels.size(0);
      timed_seconds += seconds;
    }
    ++index;
    if (options.on_batch) options.on_batch(index, total);
  }
  if (r.images == 0 && !options.allow_empty_shard)
    throw std::runtime_error("evaluation: the eval split gave no images");
  r.correct1 = correct1.item<int64_t>();
  r.correct5 = correct5.item<int64_t>();
  r.loss_sum = loss_sum.item<double>();
  if (r.images > 0) {  // an empty shard leaves the ratios to the sum over ranks
    r.top1 = static_cast<double>(r.correct1) / static_cast<double>(r.images);
    r.top5 = static_cast<double>(r.correct5) / static_cast<double>(r.images);
    r.loss = r.loss_sum / static_cast<double>(r.images);
  }
  r.images_per_second = timed_seconds > 0 ? static_cast<double>(timed_images) / timed_seconds : 0;
  r.latency = latency_stats(batch_ms);
  r.skipped_records = loader.skipped_records();
  if (was_training) model.train();
  return r;
}

}  // namespace convnets
