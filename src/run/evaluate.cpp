#include "run/evaluate.h"

#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>

namespace convnets {

namespace {

// The error when not one image could be evaluated: an empty split, or one whose every record was bad.
std::string no_images_message(int64_t skipped, const std::string& split) {
  if (skipped == 0) return "evaluation: " + split + " gave no images";
  return "evaluation: every record of " + split + " was bad (" + std::to_string(skipped) +
         " skipped, each named above): no image to evaluate";
}

}  // namespace

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
  if (r.images == 0)
    throw std::runtime_error(no_images_message(r.skipped_records, "the eval split, on every rank,"));
  r.top1 = static_cast<double>(r.correct1) / static_cast<double>(r.images);
  r.top5 = static_cast<double>(r.correct5) / static_cast<double>(r.images);
  r.loss = r.loss_sum / static_cast<double>(r.images);
  return r;
}

TopkHits count_topk_hits(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t k = std::min<int64_t>(5, logits.size(1));
  const torch::Tensor top = std::get<1>(logits.topk(k, 1));
  const torch::Tensor hits = top.eq(labels.unsqueeze(1));
  return {hits.select(1, 0).sum(), hits.any(1).sum()};
}

EvalResult evaluate(InferenceModel& model, Loader& loader, const RunDevice& device, const ResolvedData& data,
                    const EvalOptions& options) {
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
  while (true) {
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Batch> batch = loader.next();
    if (!batch) break;
    const bool async = device.device.is_cuda() && batch->images.is_pinned();
    const torch::Tensor images = batch->images.to(device.device, /*non_blocking=*/async);
    const torch::Tensor labels = batch->labels.to(device.device, /*non_blocking=*/async);
    const torch::Tensor logits = model.forward_images(images, data.mean, data.std);
    const TopkHits hits = count_topk_hits(logits, labels);
    correct1 += hits.top1;
    correct5 += hits.top5;
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(torch::kDouble);
    device.synchronize();
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
    throw std::runtime_error(no_images_message(loader.skipped_records(), options.split_name));
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
  return r;
}

SplitEvaluator::SplitEvaluator(std::shared_ptr<const ImageSource> split, const RunConfig& config,
                               const RunDevice& device, ProcessGroup* group, int64_t warmup_batches,
                               Console* console)
    : device_(device),
      data_(resolve_data(config)),
      arch_(config.model.arch),
      precision_(config.precision),
      cpu_(config.cpu),
      group_(group),
      console_(console),
      loader_(std::move(split),
              eval_loader_options(config, group ? group->rank() : 0, group ? group->size() : 1)) {
  options_.allow_empty_shard = group != nullptr;
  if (!config.data.data_dir.empty()) options_.split_name = "the eval split of '" + config.data.data_dir + "'";
  options_.warmup_batches = std::min<int64_t>(warmup_batches, loader_.batches_per_epoch() / 2);
}

EvalResult SplitEvaluator::evaluate(const ConvNetPtr& model, const Int8Quantization* int8) {
  InferenceModel form(model, arch_, device_, precision_, cpu_, console_, int8);
  form_ = form.describe();
  EvalResult r = convnets::evaluate(form, loader_, device_, data_, options_);
  return group_ ? sum_over_ranks(r, *group_) : r;
}

nlohmann::json eval_report_json(const EvalResult& r, const std::string& prefix) {
  return {{prefix + "images", r.images},
          {prefix + "skipped_records", r.skipped_records},
          {prefix + "top1_accuracy", r.top1},
          {prefix + "top5_accuracy", r.top5},
          {prefix + "eval_loss", r.loss},
          {prefix + "eval_throughput", r.images_per_second},
          {prefix + "eval_latency_avg", r.latency.avg},
          {prefix + "eval_latency_p50", r.latency.p50},
          {prefix + "eval_latency_p90", r.latency.p90},
          {prefix + "eval_latency_p95", r.latency.p95},
          {prefix + "eval_latency_p99", r.latency.p99}};
}

}  // namespace convnets
