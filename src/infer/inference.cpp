#include "infer/inference.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "data/image_folder_dataset.h"
#include "data/transforms.h"
#include "dist/dist_env.h"
#include "dist/process_group.h"
#include "train/autocast.h"
#include "train/checkpoint.h"
#include "util/dllogger.h"
#include "util/file_io.h"
#include "util/state_dict.h"
#include "util/weights.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

// predict and inference_benchmark measure one process; a multi-process launch would repeat them per rank.
void require_single_process(const char* mode) {
  const DistEnv env = detect_dist_env(process_env());
  if (env.distributed()) {
    throw std::invalid_argument(std::string(mode) + " runs in one process, but this is rank " +
                                std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
                                env.launcher + " launch); run it without the launcher");
  }
}

// The log of a mode in model_dir (created when missing: eval --weights may name a fresh directory). Readers
// need no write access: when model_dir (or its log) cannot be written, the log goes to stdout only.
std::string dll_path(const TrainConfig& c) {
  if (c.model_dir.empty()) return {};
  const std::string path = (fs::path(c.model_dir) / c.log_filename).string();
  try {
    fs::create_directories(c.model_dir);
    std::fclose(open_output_file(path, "a"));
    return path;
  } catch (const std::exception& e) {
    std::cerr << "notice: not writing the log file: " << e.what() << "\n";
    return {};
  }
}

std::string describe(const BatchNormConvention& bn) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "BatchNorm eps %g, momentum %g (%s)", bn.eps, bn.momentum,
                bn.source.c_str());
  return buf;
}

void sync(const RunDevice& d) {
  if (d.device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

LoadedWeights load_for_inference(const TrainConfig& config, const RunDevice& device, bool allow_random) {
  LoadedWeights w;
  TrainConfig no_finetune = config;
  no_finetune.finetune_from.clear();
  w.model = build_model(no_finetune, device.device, false);
  std::string path = config.weights;
  if (path.empty() && !config.model_dir.empty() && fs::is_directory(config.model_dir)) {
    CheckpointManager manager(config.model_dir, 1000000);
    if (auto latest = manager.latest()) {
      path = *latest;
    } else if (fs::exists(fs::path(config.model_dir) / "final_weights.pt")) {
      path = (fs::path(config.model_dir) / "final_weights.pt").string();
    }
  }
  if (path.empty()) {
    if (!allow_random) {
      throw std::invalid_argument("no weights: give --weights FILE, or a --model_dir holding checkpoints");
    }
    std::cerr << "warning: no --weights and no checkpoint in model_dir; using the random initialisation\n";
    w.source = "random init";
    w.batch_norm = resolve_batch_norm(config, WeightsOrigin::kNone);
    return w;
  }
  if (!fs::is_regular_file(path)) throw std::invalid_argument("weights '" + path + "' does not exist");
  const std::string bytes = read_file(path);
  std::optional<TensorSections> sections;
  WeightsMetadata metadata;
  try {
    sections = torch_sections_from_bytes(bytes, path);
    metadata = torch_file_metadata(bytes, path);
  } catch (const std::exception&) {
    sections.reset();  // not a sectioned training checkpoint: a plain state dict (.pt / .safetensors)
  }
  const NamedTensors* weights = sections ? find_section(*sections, "state_dict") : nullptr;
  // Whose convention the weights follow: ours when convnets wrote them (metadata, a training checkpoint, or
  // the file the run in model_dir left), else torchvision's / timm's.
  WeightsOrigin origin = WeightsOrigin::kConvnets;
  if (weights) {
    load_state_dict(*w.model, normalize_keys(*weights));
    if (const NamedTensors* ema = find_section(*sections, "ema_state_dict")) {
      w.ema_model = build_model(no_finetune, device.device, false);
      load_state_dict(*w.ema_model, *ema);
    }
  } else {
    WeightsFile file = weights_file_from_bytes(bytes, path);
    metadata = std::move(file.metadata);
    // A file named with --weights and without our metadata was written elsewhere; the file a run left in
    // model_dir is ours (runs before the metadata existed wrote none).
    if (!config.weights.empty()) origin = weights_origin(file.tensors, metadata);
    try {
      load_state_dict(*w.model, normalize_keys(file.tensors), /*strict=*/true);
    } catch (const StateDictMismatch& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  if (const std::string bad = non_finite_summary(state_dict(*w.model)); !bad.empty())
    std::cerr << "warning: weights '" << path << "': " << bad << "; its predictions are meaningless\n";
  w.batch_norm = resolve_batch_norm(config, origin, metadata);
  apply_batch_norm(*w.model, w.batch_norm);
  if (w.ema_model) apply_batch_norm(*w.ema_model, w.batch_norm);
  w.source = path;
  return w;
}

EvalModeResult run_eval_mode(const TrainConfig& config) {
  // Launched by torchrun / srun / mpirun: each rank evaluates a shard, rank 0 reports the exact totals.
  const DistEnv dist_env = run_dist_env(config);
  const RunDevice device = setup_device(config, dist_env.local_rank);
  const std::unique_ptr<ProcessGroup> group = join_ranks(config, dist_env, device);
  const bool main_rank = !group || group->is_main();
  const ResolvedData data = resolve_data(config);
  auto source = open_split(config, false);
  if (!source) throw std::invalid_argument("eval needs --data_dir with a validation split");
  LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false);
  DlLogger dll(main_rank ? dll_path(config) : std::string(), main_rank);
  dll.log("PARAMETER", config_to_json(config), false);
  for (const char* m :
       {"eval_latency_avg", "eval_latency_p50", "eval_latency_p90", "eval_latency_p95", "eval_latency_p99"})
    dll.metadata(m, "ms");
  dll.metadata("eval_throughput", "images/s");
  LoaderOptions lo = eval_loader_options(config);
  lo.rank = dist_env.rank;
  lo.world_size = dist_env.world_size;
  Loader loader(source, lo);
  EvalOptions eo;
  eo.allow_empty_shard = group != nullptr;
  eo.warmup_batches = std::min<int64_t>(config.warmup_steps, loader.batches_per_epoch() / 2);
  if (main_rank) {
    std::cout << "evaluating " << w.source << " on " << source->size() << " records (" << device.describe()
              << (group ? ", " + std::to_string(group->size()) + " ranks" : std::string()) << "; "
              << describe(w.batch_norm) << ")\n";
  }
  auto evaluate_all = [&](ConvNetImpl& m) {
    EvalResult r = evaluate(m, loader, device, data, eo);
    return group ? sum_over_ranks(r, *group) : r;
  };
  EvalModeResult result;
  auto report = [&](const EvalResult& r, const std::string& which) {
    dll.log(nlohmann::json::array(), {{"weights", which},
                                      {"top1_accuracy", r.top1},
                                      {"top5_accuracy", r.top5},
                                      {"eval_loss", r.loss},
                                      {"images", r.images},
                                      {"skipped_records", r.skipped_records},
                                      {"eval_throughput", r.images_per_second},
                                      {"eval_latency_avg", r.latency.avg},
                                      {"eval_latency_p50", r.latency.p50},
                                      {"eval_latency_p90", r.latency.p90},
                                      {"eval_latency_p95", r.latency.p95},
                                      {"eval_latency_p99", r.latency.p99}});
  };
  if (w.ema_model) {  // EMA first, then the raw weights (as the EfficientNet recipe's eval does)
    result.ema = evaluate_all(*w.ema_model);
    report(*result.ema, "ema");
  }
  result.raw = evaluate_all(*w.model);
  report(result.raw, "raw");
  if (group) group->barrier();
  return result;
}

std::vector<Prediction> run_predict(const TrainConfig& config) {
  require_single_process("predict");
  if (config.to_predict.empty()) throw std::invalid_argument("predict needs --to_predict FILE_OR_DIRECTORY");
  std::vector<std::string> files;
  if (fs::is_directory(config.to_predict)) {
    for (const auto& e : fs::recursive_directory_iterator(config.to_predict)) {
      if (e.is_regular_file() && is_image_file(e.path().string())) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::invalid_argument("to_predict '" + config.to_predict + "' holds no JPEG or PNG image");
  } else if (fs::is_regular_file(config.to_predict)) {
    files.push_back(config.to_predict);
  } else {
    throw std::invalid_argument("to_predict '" + config.to_predict + "' does not exist");
  }
  const RunDevice device = setup_device(config);
  const ResolvedData data = resolve_data(config);
  LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false);
  ConvNetPtr model = w.ema_model ? w.ema_model : w.model;  // the average, when there is one
  model->eval();
  const auto names = load_class_names(config);
  const EvalTransformOptions transform = eval_transform_options(config);
  const int64_t batch =
      config.eval_batch_size > 0 ? config.eval_batch_size : std::min<int64_t>(config.batch_size, 32);
  const int64_t k = std::min(config.topk, config.num_classes);
  std::cout << "predicting " << files.size() << " image(s) with " << w.source
            << (w.ema_model ? " (EMA weights)" : "") << "; " << describe(w.batch_norm) << "\n";
  std::vector<Prediction> out;
  std::vector<std::string> unreadable;
  double decode_s = 0, model_s = 0;
  torch::NoGradGuard no_grad;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(batch));
    const auto t0 = std::chrono::steady_clock::now();
    // One unreadable image is reported and skipped; the others are still predicted (exit status non-zero at
    // the end). A single file given alone is an error at once.
    std::vector<size_t> readable;
    torch::Tensor u8 =
        torch::empty({static_cast<int64_t>(end - start), transform.size, transform.size, 3}, torch::kUInt8);
    for (size_t i = start; i < end; ++i) {
      try {
        const std::string bytes = read_file(files[i]);
        // Decoded whole (JPEG and PNG alike), then cropped and resized: what PIL + torchvision compute for
        // one image. (The loader's ROI / DCT-scaled JPEG decoding is faster and differs at crop edges.)
        const ImageU8 img = eval_transform(decode_image(bytes), transform);
        std::memcpy(u8[static_cast<int64_t>(readable.size())].data_ptr<uint8_t>(), img.pixels.data(),
                    img.pixels.size());
        readable.push_back(i);
      } catch (const std::exception& e) {
        const std::string what = "to_predict: '" + files[i] + "' is not a readable image: " + e.what();
        if (files.size() == 1) throw std::runtime_error(what);
        std::fprintf(stderr, "error: %s\n", what.c_str());
        unreadable.push_back(files[i]);
      }
    }
    if (readable.empty()) continue;
    u8 = u8.narrow(0, 0, static_cast<int64_t>(readable.size()));
    const auto t1 = std::chrono::steady_clock::now();
    torch::Tensor images = normalize_images(u8.to(device.device), data.mean, data.std);
    torch::Tensor probs;
    {
      AutocastGuard autocast(device.device.type(), device.autocast);
      probs = torch::softmax(model->forward(images).to(torch::kFloat), 1);
    }
    auto [values, indices] = probs.topk(k, 1);
    values = values.cpu();
    indices = indices.cpu();
    sync(device);
    const auto t2 = std::chrono::steady_clock::now();
    decode_s += std::chrono::duration<double>(t1 - t0).count();
    model_s += std::chrono::duration<double>(t2 - t1).count();
    for (size_t row_index = 0; row_index < readable.size(); ++row_index) {
      Prediction p;
      p.file = files[readable[row_index]];
      const auto row = static_cast<int64_t>(row_index);
      for (int64_t j = 0; j < k; ++j) {
        p.classes.push_back(indices[row][j].item<int64_t>());
        p.probabilities.push_back(values[row][j].item<double>());
      }
      std::printf("%s\n", p.file.c_str());
      for (int64_t j = 0; j < k; ++j) {
        const int64_t c = p.classes[static_cast<size_t>(j)];
        const std::string name = c < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(c)] : "";
        std::printf("  %2lld. %5lld  %6.2f%%  %s\n", static_cast<long long>(j + 1), static_cast<long long>(c),
                    100.0 * p.probabilities[static_cast<size_t>(j)], name.c_str());
      }
      out.push_back(std::move(p));
    }
  }
  std::printf("%zu image(s): decode+transform %.1f ms/image, model %.1f ms/image (%s)\n", files.size(),
              1e3 * decode_s / static_cast<double>(files.size()),
              1e3 * model_s / static_cast<double>(files.size()), device.describe().c_str());
  if (!config.predict_output.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : out) {
      nlohmann::json top = nlohmann::json::array();
      for (size_t r = 0; r < p.classes.size(); ++r) {
        const int64_t c = p.classes[r];
        top.push_back(
            {{"class", c},
             {"probability", p.probabilities[r]},
             {"name", c < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(c)] : ""}});
      }
      j.push_back({{"file", p.file}, {"top", top}});
    }
    write_file_atomic(config.predict_output,
                      j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (!unreadable.empty()) {
    throw std::runtime_error(std::to_string(unreadable.size()) + " of " + std::to_string(files.size()) +
                             " images could not be read (listed above); the others were predicted");
  }
  return out;
}

std::vector<InferenceBenchmarkRow> run_inference_benchmark(const TrainConfig& config) {
  require_single_process("inference_benchmark");
  const RunDevice device = setup_device(config);
  const ResolvedData data = resolve_data(config);
  LoadedWeights w = load_for_inference(config, device, /*allow_random=*/true);
  w.model->eval();
  DlLogger dll(dll_path(config), true);
  dll.log("PARAMETER", config_to_json(config), false);
  dll.metadata("throughput", "images/s");
  for (const char* m : {"latency_avg", "latency_p50", "latency_p90", "latency_p95", "latency_p99"})
    dll.metadata(m, "ms");
  std::vector<int64_t> sizes;
  for (double b : config.batch_sizes) sizes.push_back(static_cast<int64_t>(b));
  if (sizes.empty()) sizes.push_back(config.eval_batch_size > 0 ? config.eval_batch_size : config.batch_size);
  const int64_t steps = config.iter_unit == "batch" ? config.num_iter : 100;
  std::vector<InferenceBenchmarkRow> rows;
  torch::NoGradGuard no_grad;
  std::cout << "inference_benchmark " << config.arch << " at " << data.eval_size << "x" << data.eval_size
            << " on " << device.describe() << ": " << config.warmup_steps << " warm-up + " << steps
            << " timed batches per batch size\n";
  for (int64_t bs : sizes) {
    SyntheticLoader synthetic(bs, static_cast<int>(data.eval_size), config.num_classes,
                              static_cast<uint64_t>(config.seed));
    // The uint8 batch lives on the device, as in the seeds: this measures the model, not the input path.
    const torch::Tensor u8 = synthetic.next(0, 0).images.to(device.device);
    std::vector<double> ms;
    for (int64_t i = 0; i < config.warmup_steps + steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      {
        AutocastGuard autocast(device.device.type(), device.autocast);
        torch::Tensor logits = w.model->forward(normalize_images(u8, data.mean, data.std));
      }
      sync(device);
      const double t =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (i >= config.warmup_steps) ms.push_back(t);
    }
    InferenceBenchmarkRow row;
    row.batch_size = bs;
    row.latency = latency_stats(ms);
    row.images_per_second = row.latency.avg > 0 ? 1e3 * static_cast<double>(bs) / row.latency.avg : 0;
    dll.log(nlohmann::json::array({bs}), {{"batch_size", bs},
                                          {"throughput", row.images_per_second},
                                          {"latency_avg", row.latency.avg},
                                          {"latency_p50", row.latency.p50},
                                          {"latency_p90", row.latency.p90},
                                          {"latency_p95", row.latency.p95},
                                          {"latency_p99", row.latency.p99}});
    rows.push_back(row);
  }
  std::printf("%8s %12s %10s %10s %10s %10s %10s\n", "batch", "images/s", "avg ms", "p50 ms", "p90 ms",
              "p95 ms", "p99 ms");
  for (const auto& r : rows) {
    std::printf("%8lld %12.1f %10.2f %10.2f %10.2f %10.2f %10.2f\n", static_cast<long long>(r.batch_size),
                r.images_per_second, r.latency.avg, r.latency.p50, r.latency.p90, r.latency.p95,
                r.latency.p99);
  }
  return rows;
}

}  // namespace convnets
