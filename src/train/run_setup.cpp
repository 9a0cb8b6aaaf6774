#include "train/run_setup.h"

#include <ATen/Context.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unordered_map>

#include "data/image_folder_dataset.h"
#include "data/tfrecord_dataset.h"
#include "util/state_dict.h"
#include "util/weights.h"

namespace convnets {
namespace fs = std::filesystem;

extern const char* const kImageNetClassNamesText;  // generated from resources/imagenet_classes.txt

std::string RunDevice::describe() const {
  std::string s = device.str();
  if (autocast) s += *autocast == torch::kBFloat16 ? ", autocast bf16" : ", autocast fp16 + loss scaling";
  return s;
}

RunDevice setup_device(const TrainConfig& config, int local_rank) {
  RunDevice d;
  const bool cuda = torch::cuda::is_available();
  if (config.device == "cuda" && !cuda)
    throw std::runtime_error("device = cuda, but no CUDA device is available");
  int gpu = config.cuda_device >= 0 ? static_cast<int>(config.cuda_device) : local_rank;
  if (config.device != "cpu" && cuda) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (config.cuda_device >= count) {
      throw std::runtime_error("cuda_device " + std::to_string(config.cuda_device) + ": this node has " +
                               std::to_string(count) + " GPU(s)");
    }
    if (gpu >= count) {
      throw std::runtime_error("local rank " + std::to_string(local_rank) + " has no GPU: this node has " +
                               std::to_string(count) +
                               " (launch one process per GPU, or share one with --cuda_device and the gloo "
                               "backend)");
    }
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(gpu));
  }
  d.device = (config.device == "cpu" || !cuda)
                 ? torch::Device(torch::kCPU)
                 : torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu));
  if (config.amp) {
    if (d.device.is_cuda() && config.amp_dtype == "fp16") {
      d.autocast = torch::kHalf;
      d.loss_scaling = true;
    } else {
      d.autocast = torch::kBFloat16;  // CPU autocast is bf16 only
    }
  }
  if (d.device.is_cuda()) {
    at::globalContext().setAllowTF32CuBLAS(config.tf32);
    at::globalContext().setAllowTF32CuDNN(config.tf32);
    at::globalContext().setBenchmarkCuDNN(config.cudnn_benchmark);
  }
  return d;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

DistEnv run_dist_env(const TrainConfig& config) {
  return detect_dist_env(process_env(), config.master_addr, static_cast<int>(config.master_port));
}

std::unique_ptr<ProcessGroup> join_ranks(const TrainConfig& config, const DistEnv& env,
                                         const RunDevice& device) {
  if (!env.distributed()) return nullptr;
  ProcessGroupOptions po;
  po.backend = config.dist_backend;
  po.timeout = std::chrono::seconds(config.dist_timeout);
  return ProcessGroup::create(env, device.device, po);
}

namespace {
std::optional<double> metadata_number(const WeightsMetadata& m, const std::string& key) {
  const auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size() && v > 0 && v < 1) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("weights metadata '" + key + "' = '" + it->second +
                           "': expected a number in (0, 1)");
}
}  // namespace

BatchNormConvention resolve_batch_norm(const TrainConfig& config, WeightsOrigin origin,
                                       const WeightsMetadata& metadata) {
  BatchNormConvention bn;
  const ModelEntry& entry = find_model(config.arch);
  const std::optional<double> meta_eps = metadata_number(metadata, "convnets.bn_eps");
  const std::optional<double> meta_momentum = metadata_number(metadata, "convnets.bn_momentum");
  if (meta_eps && meta_momentum) {
    bn = {*meta_eps, *meta_momentum, "weights metadata"};
  } else if (origin == WeightsOrigin::kTorchvision) {
    bn = {entry.torchvision_bn.eps, entry.torchvision_bn.momentum, "torchvision's"};
  } else if (origin == WeightsOrigin::kTimm) {
    bn = {entry.timm_bn.eps, entry.timm_bn.momentum, "timm's"};
  } else {
    bn = {entry.recipe_bn.eps, entry.recipe_bn.momentum, "recipe"};
  }
  if (config.bn_eps > 0) bn.eps = config.bn_eps;
  if (config.bn_momentum > 0) bn.momentum = config.bn_momentum;
  if (config.bn_eps > 0 || config.bn_momentum > 0) bn.source = "flag";
  return bn;
}

WeightsOrigin weights_origin(const NamedTensors& tensors, const WeightsMetadata& metadata) {
  if (!metadata.empty()) return WeightsOrigin::kConvnets;
  return is_timm_efficientnet_layout(tensors) ? WeightsOrigin::kTimm : WeightsOrigin::kTorchvision;
}

void apply_batch_norm(torch::nn::Module& model, const BatchNormConvention& bn) {
  for (const auto& m : model.modules()) {
    if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) {
      b->options.eps(bn.eps);
      b->options.momentum(bn.momentum);
    }
  }
}

WeightsMetadata model_metadata(const TrainConfig& config) {
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  return {{"convnets.arch", config.arch},
          {"convnets.num_classes", std::to_string(config.num_classes)},
          {"convnets.bn_eps", text(config.bn_eps)},
          {"convnets.bn_momentum", text(config.bn_momentum)}};
}

TrainConfig with_resolved_batch_norm(const TrainConfig& config) {
  TrainConfig c = config;
  WeightsOrigin origin = WeightsOrigin::kNone;
  WeightsMetadata metadata;
  if (!config.finetune_from.empty() && (config.bn_eps <= 0 || config.bn_momentum <= 0)) {
    WeightsFile file = load_weights_file(config.finetune_from);
    metadata = std::move(file.metadata);
    origin = weights_origin(file.tensors, metadata);
  }
  const BatchNormConvention bn = resolve_batch_norm(config, origin, metadata);
  c.bn_eps = bn.eps;
  c.bn_momentum = bn.momentum;
  return c;
}

ConvNetPtr build_model(const TrainConfig& config, const torch::Device& device, bool load_finetune) {
  ModelOverrides o;
  o.num_classes = config.num_classes;
  if (config.bn_eps > 0) o.bn_eps = config.bn_eps;
  if (config.bn_momentum > 0) o.bn_momentum = config.bn_momentum;
  if (config.dropout >= 0) o.dropout = config.dropout;
  if (config.stochastic_depth >= 0) o.stochastic_depth = config.stochastic_depth;
  if (find_model(config.arch).family == "resnet") {
    o.zero_init_residual = config.zero_init_residual;
    o.init_mode = config.weight_init == "fan_out" ? FanMode::kFanOut : FanMode::kFanIn;
  }
  ConvNetPtr model = create_model(config.arch, o);
  if (load_finetune && !config.finetune_from.empty()) {
    NamedTensors weights = normalize_keys(load_weights(config.finetune_from));
    // Only the classifier may differ (a new number of classes keeps its fresh initialisation); the backbone
    // must match exactly, or the file is for another architecture.
    auto is_head = [](const std::string& name) {
      return name.rfind("fc.", 0) == 0 || name.rfind("classifier.", 0) == 0;
    };
    std::unordered_map<std::string, torch::Tensor> own;
    for (auto& [name, t] : state_dict(*model)) own.emplace(name, t);
    NamedTensors usable;
    std::vector<std::string> skipped;
    for (auto& [name, t] : weights) {
      const auto it = own.find(name);
      if (it != own.end() && it->second.sizes() != t.sizes() && is_head(name)) {
        skipped.push_back(name);
        continue;
      }
      usable.emplace_back(name, t);
    }
    LoadReport report = load_state_dict(*model, usable, /*strict=*/false);
    // The head, and BatchNorm counters older files lack (they do not affect the model), may be missing.
    std::erase_if(report.missing, [&](const std::string& name) {
      return is_head(name) || name.ends_with("num_batches_tracked");
    });
    if (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty()) {
      throw std::runtime_error("finetune_from '" + config.finetune_from + "' does not fit " + config.arch +
                               " (only the classifier may differ):\n" + report.describe());
    }
    std::cout << "finetune_from " << config.finetune_from << ": loaded " << report.loaded << " tensors";
    if (!skipped.empty()) std::cout << "; kept the fresh init of " << skipped.size() << " (shape differs)";
    if (!report.missing.empty()) std::cout << "; " << report.missing.size() << " missing in the file";
    if (!report.unexpected.empty()) std::cout << "; " << report.unexpected.size() << " unused";
    std::cout << "\n";
  }
  model->to(device);
  if (config.channels_last) to_channels_last(*model);
  return model;
}

namespace {
bool has_prefix_file(const std::string& dir, const std::string& prefix) {
  if (!fs::is_directory(dir)) return false;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0) return true;
  }
  return false;
}
}  // namespace

std::shared_ptr<const ImageSource> open_split(const TrainConfig& config, bool train) {
  if (config.data_dir.empty()) return nullptr;
  const std::string& dir = config.data_dir;
  if (!fs::is_directory(dir)) throw std::runtime_error("data_dir '" + dir + "' does not exist");
  const std::string split = train ? "train" : "validation";
  if (has_prefix_file(dir, split + "-")) {
    DatasetOptions o;
    o.num_classes = config.num_classes;
    o.strict = config.strict_data;
    o.index_dir = config.data_idx_dir.empty() ? (fs::path(dir) / "idx").string() : config.data_idx_dir;
    return std::make_shared<TFRecordDataset>(find_shards(dir, split), o);
  }
  std::vector<std::string> folders =
      train ? std::vector<std::string>{"train"} : std::vector<std::string>{"val", "validation"};
  for (const auto& f : folders) {
    const fs::path p = fs::path(dir) / f;
    if (fs::is_directory(p)) {
      auto ds = std::make_shared<ImageFolderDataset>(p.string(), config.strict_data);
      if (static_cast<int64_t>(ds->classes().size()) != config.num_classes) {
        throw std::runtime_error("image folder '" + p.string() + "' has " +
                                 std::to_string(ds->classes().size()) +
                                 " classes, but num_classes = " + std::to_string(config.num_classes));
      }
      return ds;
    }
  }
  throw std::runtime_error("data_dir '" + dir + "' has neither '" + split + "-*' TFRecord shards nor a '" +
                           folders.front() + "' image folder; convert data with `convnets prepare_data`");
}

ResolvedData resolve_data(const TrainConfig& config) {
  const ModelEntry& e = find_model(config.arch);
  ResolvedData d;
  d.train_size = config.image_size > 0 ? config.image_size : e.data.train_size;
  d.eval_size = config.eval_image_size > 0 ? config.eval_image_size : e.data.eval_size;
  d.crop_pct = config.eval_crop_pct > 0 ? config.eval_crop_pct : e.data.crop_pct;
  d.interpolation =
      parse_interpolation(config.interpolation.empty() ? e.data.interpolation : config.interpolation);
  d.mean = e.data.mean;
  d.std = e.data.std;
  return d;
}

TrainTransformOptions train_transform_options(const TrainConfig& config, int64_t size,
                                              double randaug_magnitude) {
  const ResolvedData d = resolve_data(config);
  TrainTransformOptions t;
  t.size = static_cast<int>(size);
  t.interpolation = d.interpolation;
  t.sampler =
      config.crop_sampler == "resized_crop" ? CropSampler::kResizedCrop : CropSampler::kDistortedBoundingBox;
  t.augmentation = config.augmentation == "autoaugment"   ? Augmentation::kAutoAugment
                   : config.augmentation == "randaugment" ? Augmentation::kRandAugment
                                                          : Augmentation::kNone;
  if (config.crop_min_area > 0) {
    t.distorted.min_area = config.crop_min_area;
    t.resized.min_scale = config.crop_min_area;
  }
  t.randaugment_layers = static_cast<int>(config.randaug_layers);
  t.randaugment_magnitude = randaug_magnitude;
  return t;
}

EvalTransformOptions eval_transform_options(const TrainConfig& config) {
  const ResolvedData d = resolve_data(config);
  EvalTransformOptions t;
  t.size = static_cast<int>(d.eval_size);
  t.interpolation = d.interpolation;
  // Evaluation decodes whole images, so accuracies are those torchvision computes on the same files.
  t.dct_scaling = false;
  if (find_model(config.arch).family == "resnet" && config.eval_crop_pct <= 0) {
    // RN50 TF1: shorter side to size * 256 / 224, centre crop.
    t.crop = EvalCrop::kResizeShorterThenCenter;
    t.resize_shorter = static_cast<int>(d.eval_size * 256 / 224);
  } else {
    t.crop = EvalCrop::kCenterFractionThenResize;
    t.crop_fraction = d.crop_pct;
  }
  return t;
}

LoaderOptions eval_loader_options(const TrainConfig& config) {
  LoaderOptions lo;
  lo.batch_size = config.eval_batch_size > 0 ? config.eval_batch_size : config.batch_size;
  lo.workers = static_cast<int>(config.workers);
  lo.prefetch = static_cast<int>(config.prefetch);
  lo.train = false;
  lo.seed = static_cast<uint64_t>(config.seed);
  lo.eval_transform = eval_transform_options(config);
  return lo;
}

LoaderOptions train_loader_options(const TrainConfig& config, int64_t image_size, double randaug_magnitude) {
  LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.workers = static_cast<int>(config.workers);
  lo.prefetch = static_cast<int>(config.prefetch);
  lo.train = true;
  lo.seed = static_cast<uint64_t>(config.seed);
  lo.train_transform = train_transform_options(config, image_size, randaug_magnitude);
  return lo;
}

namespace {
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}
}  // namespace

const std::vector<std::string>& imagenet_class_names() {
  static const std::vector<std::string> names = split_lines(kImageNetClassNamesText);
  return names;
}

std::vector<std::string> load_class_names(const TrainConfig& config) {
  std::vector<std::string> candidates;
  if (!config.class_names.empty()) {
    if (!fs::is_regular_file(config.class_names))
      throw std::runtime_error("class_names '" + config.class_names + "' does not exist");
    candidates.push_back(config.class_names);
  }
  if (!config.data_dir.empty()) candidates.push_back((fs::path(config.data_dir) / "classes.txt").string());
  if (!config.model_dir.empty()) candidates.push_back((fs::path(config.model_dir) / "classes.txt").string());
  for (const auto& path : candidates) {
    if (!fs::is_regular_file(path)) continue;
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto names = split_lines(ss.str());
    if (static_cast<int64_t>(names.size()) != config.num_classes) {
      throw std::runtime_error("class names '" + path + "' has " + std::to_string(names.size()) +
                               " lines, but num_classes = " + std::to_string(config.num_classes));
    }
    return names;
  }
  if (config.num_classes == 1000) return imagenet_class_names();
  return {};
}

std::pair<torch::Tensor, torch::Tensor> batch_to_device(const Batch& batch, const RunDevice& device,
                                                        const ResolvedData& data) {
  const bool async = device.device.is_cuda() && batch.images.is_pinned();
  torch::Tensor images = batch.images.to(device.device, /*non_blocking=*/async);
  torch::Tensor labels = batch.labels.to(device.device, /*non_blocking=*/async);
  return {normalize_images(images, data.mean, data.std), labels};
}

}  // namespace convnets
