#include "train/train_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "models/registry.h"
#include "util/file_io.h"

namespace convnets {
namespace {

struct Key {
  ConfigKeyInfo info;
  std::function<void(TrainConfig&, const std::string&)> set;  // throws std::invalid_argument(expected)
  std::function<nlohmann::json(const TrainConfig&)> get;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

double parse_double(const std::string& text) {
  const std::string t = trim(text);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v)) throw std::invalid_argument("a number");
  return v;
}

int64_t parse_int(const std::string& text) {
  const std::string t = trim(text);
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size()) throw std::invalid_argument("an integer");
  return v;
}

bool parse_bool(const std::string& text) {
  const std::string t = trim(text);
  if (t == "true" || t == "True" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "False" || t == "0" || t == "no" || t == "off") return false;
  throw std::invalid_argument("true or false");
}

Key number(const char* name, double TrainConfig::*member, double lo, double hi, const char* help) {
  return {{name, "number", help},
          [=](TrainConfig& c, const std::string& v) {
            const double x = parse_double(v);
            if (x < lo || x > hi) {
              std::ostringstream os;
              os << "a number in [" << lo << ", " << hi << "]";
              throw std::invalid_argument(os.str());
            }
            c.*member = x;
          },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

Key integer(const char* name, int64_t TrainConfig::*member, int64_t lo, int64_t hi, const char* help) {
  return {{name, "integer", help},
          [=](TrainConfig& c, const std::string& v) {
            const int64_t x = parse_int(v);
            if (x < lo || x > hi) {
              throw std::invalid_argument("an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                          "]");
            }
            c.*member = x;
          },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

Key boolean(const char* name, bool TrainConfig::*member, const char* help) {
  return {{name, "bool", help, true},
          [=](TrainConfig& c, const std::string& v) { c.*member = parse_bool(v); },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

Key text(const char* name, std::string TrainConfig::*member, const char* help) {
  return {{name, "text", help},
          [=](TrainConfig& c, const std::string& v) { c.*member = trim(v); },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

// An output file created inside model_dir: a plain name, so no configuration can point it elsewhere.
Key file_name(const char* name, std::string TrainConfig::*member, const char* help) {
  return {{name, "text", help},
          [=](TrainConfig& c, const std::string& v) {
            const std::string t = trim(v);
            try {
              check_plain_file_name(t, name);
            } catch (const std::invalid_argument&) {
              throw std::invalid_argument("a plain file name (created inside model_dir; no '/' or '..')");
            }
            c.*member = t;
          },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

Key choice(const char* name, std::string TrainConfig::*member, std::vector<std::string> allowed,
           const char* help) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
  return {{name, list, help},
          [=](TrainConfig& c, const std::string& v) {
            const std::string t = trim(v);
            for (const auto& a : allowed) {
              if (t == a) {
                c.*member = t;
                return;
              }
            }
            throw std::invalid_argument("one of " + list);
          },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

Key number_list(const char* name, std::vector<double> TrainConfig::*member, const char* help) {
  return {{name, "list of numbers", help},
          [=](TrainConfig& c, const std::string& v) {
            std::vector<double> out;
            std::string t = trim(v);
            if (!t.empty() && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
            std::stringstream ss(t);
            std::string item;
            while (std::getline(ss, item, ',')) {
              if (trim(item).empty()) continue;
              try {
                out.push_back(parse_double(item));
              } catch (const std::invalid_argument&) {
                throw std::invalid_argument("comma-separated numbers");
              }
            }
            c.*member = out;
          },
          [=](const TrainConfig& c) { return nlohmann::json(c.*member); }};
}

constexpr int64_t kBig = std::numeric_limits<int64_t>::max() / 4;
constexpr double kHuge = 1e300;

std::vector<Key> build_keys() {
  using C = TrainConfig;
  return {
      choice("arch", &C::arch, model_names(), "architecture"),
      integer("num_classes", &C::num_classes, 1, 1 << 20, "classifier outputs"),
      number("dropout", &C::dropout, -1, 0.99,
             "classifier dropout (EfficientNet); < 0: architecture default"),
      number("stochastic_depth", &C::stochastic_depth, -1, 0.99,
             "final drop rate of stochastic depth (EfficientNet); < 0: architecture default"),
      boolean("zero_init_residual", &C::zero_init_residual, "ResNet: zero-init the last BN gamma per block"),
      choice("weight_init", &C::weight_init, {"fan_in", "fan_out"}, "ResNet variance-scaling init mode"),
      text("finetune_from", &C::finetune_from, "start from these weights (non-matching head skipped)"),
      number("bn_eps", &C::bn_eps, 0, 1,
             "BatchNorm epsilon; 0: the weights' own (torchvision / timm: 1e-5), else the recipe's"),
      number("bn_momentum", &C::bn_momentum, 0, 1,
             "BatchNorm momentum (PyTorch convention); 0: the weights' own (0.1), else the recipe's"),
      text("data_dir", &C::data_dir,
           "TFRecords (train-*, validation-*) or image folders (train/, val/); "
           "empty: synthetic data"),
      text("data_idx_dir", &C::data_idx_dir, "DALI index files (default <data_dir>/idx, built when absent)"),
      text("class_names", &C::class_names, "file with one class name per line"),
      integer("image_size", &C::image_size, 0, 4096, "train resolution; 0: architecture default"),
      integer("eval_image_size", &C::eval_image_size, 0, 4096, "eval resolution; 0: architecture default"),
      number("eval_crop_pct", &C::eval_crop_pct, 0, 1, "eval centre-crop fraction; 0: architecture default"),
      text("interpolation", &C::interpolation, "bilinear | bicubic; empty: architecture default"),
      choice("crop_sampler", &C::crop_sampler, {"distorted_bbox", "resized_crop"}, "train crop sampler"),
      number("crop_min_area", &C::crop_min_area, 0, 1, "smallest train crop area; 0: the sampler's default"),
      choice("augmentation", &C::augmentation, {"none", "autoaugment", "randaugment"}, "policy"),
      integer("randaug_layers", &C::randaug_layers, 1, 10, "RandAugment ops per image"),
      number("randaug_magnitude", &C::randaug_magnitude, 0, 30, "RandAugment magnitude"),
      integer("workers", &C::workers, 1, 256, "decode threads"),
      integer("max_image_pixels", &C::max_image_pixels, 1, int64_t{1} << 40,
              "images whose header claims more pixels are refused before decoding (decompression bombs)"),
      integer("prefetch", &C::prefetch, 1, 64, "batches ready ahead, per worker"),
      boolean("strict_data", &C::strict_data, "a bad record is an error instead of a counted skip"),
      integer("batch_size", &C::batch_size, 1, 1 << 20, "per-process micro-batch"),
      integer("eval_batch_size", &C::eval_batch_size, 0, 1 << 20, "per-process eval batch; 0: batch_size"),
      integer("num_iter", &C::num_iter, 1, kBig, "number of iter_units to run"),
      choice("iter_unit", &C::iter_unit, {"epoch", "batch"}, "unit of num_iter"),
      integer("grad_accum_steps", &C::grad_accum_steps, 1, 1 << 16, "micro-batches per optimizer update"),
      integer("warmup_steps", &C::warmup_steps, 0, kBig, "benchmark steps left out of the statistics"),
      integer("display_every", &C::display_every, 1, kBig, "log every N steps"),
      integer("seed", &C::seed, 0, kBig, "seed of data order, augmentation and init"),
      choice("optimizer", &C::optimizer, {"momentum", "rmsprop", "adamw"}, "update rule"),
      // 1000 is far above any learning rate that trains; the scaled rate must stay finite in float32.
      number("lr_init", &C::lr_init, 0, 1000, "learning rate per lr_reference_batch images"),
      integer("lr_reference_batch", &C::lr_reference_batch, 1, kBig, "linear-scaling reference batch"),
      integer("max_nonfinite_steps", &C::max_nonfinite_steps, 0, 1000000,
              "stop with an error after this many consecutive non-finite losses (steps the fp16 loss "
              "scaler skipped aside); 0: never"),
      choice("lr_schedule", &C::lr_schedule, {"cosine", "step", "exponential", "constant"}, "decay"),
      choice("lr_clock", &C::lr_clock, {"global", "after_warmup"}, "what step the decay sees"),
      number("lr_warmup_epochs", &C::lr_warmup_epochs, 0, 1e6, "linear warmup from 0"),
      number_list("lr_step_epochs", &C::lr_step_epochs, "step schedule boundaries (epochs)"),
      number("lr_step_factor", &C::lr_step_factor, 0, 1, "step schedule factor per boundary"),
      number("lr_decay_rate", &C::lr_decay_rate, 0, 1, "exponential schedule rate"),
      number("lr_decay_epochs", &C::lr_decay_epochs, 1e-6, 1e6, "exponential schedule interval"),
      number("momentum", &C::momentum, 0, 1, "momentum (SGD, RMSprop)"),
      boolean("nesterov", &C::nesterov, "Nesterov momentum (SGD)"),
      number("rmsprop_rho", &C::rmsprop_rho, 0, 1, "RMSprop decay of the mean square"),
      number("opt_epsilon", &C::opt_epsilon, 0, 1, "RMSprop / AdamW epsilon"),
      number("beta1", &C::beta1, 0, 1, "AdamW beta1"),
      number("beta2", &C::beta2, 0, 1, "AdamW beta2"),
      number("weight_decay", &C::weight_decay, 0, 1, "L2, PyTorch convention (gradient += wd * w)"),
      choice("weight_decay_exclude", &C::weight_decay_exclude, {"bn", "bn_and_depthwise"}, "no decay for"),
      number("label_smoothing", &C::label_smoothing, 0, 0.99, "label smoothing epsilon"),
      number("mixup_alpha", &C::mixup_alpha, 0, 100, "mixup Beta alpha; 0: off"),
      number("cutmix_alpha", &C::cutmix_alpha, 0, 100, "CutMix Beta alpha; 0: off"),
      boolean("mix_per_example", &C::mix_per_example, "one mixing weight per example (TF) or per batch"),
      choice("mix_partner", &C::mix_partner, {"reverse", "permute"}, "mixing partner of example i"),
      boolean("mix_symmetric_max", &C::mix_symmetric_max,
              "mixup weight max(lambda, 1 - lambda): each example keeps the larger share (EfficientNet TF2)"),
      number("ema_decay", &C::ema_decay, 0, 1, "EMA of weights and BN statistics; 0: off"),
      number("grad_clip_norm", &C::grad_clip_norm, 0, kHuge, "global gradient-norm clip; 0: off"),
      integer("n_stages", &C::n_stages, 1, 100, "progressive training stages"),
      integer("base_image_size", &C::base_image_size, 16, 4096, "progressive: size before stage 0"),
      number("base_mixup", &C::base_mixup, 0, 100, "progressive: stage-0 mixup alpha"),
      number("base_cutmix", &C::base_cutmix, 0, 100, "progressive: stage-0 CutMix alpha"),
      number("base_randaug_magnitude", &C::base_randaug_magnitude, 0, 30, "progressive: stage-0 magnitude"),
      choice("device", &C::device, {"auto", "cpu", "cuda"}, "auto: CUDA when present"),
      integer("cuda_device", &C::cuda_device, -1, 1023,
              "GPU index of this process; -1: LOCAL_RANK (ranks may share one GPU with the gloo backend)"),
      boolean("amp", &C::amp, "mixed precision (autocast; CPU: bf16)"),
      choice("amp_dtype", &C::amp_dtype, {"bf16", "fp16"}, "autocast type on CUDA (fp16: loss scaling)"),
      number("static_loss_scale", &C::static_loss_scale, 0, 1e9, "fp16 static loss scale; 0: dynamic"),
      boolean("tf32", &C::tf32, "TF32 matmul/convolution on Ampere+"),
      boolean("channels_last", &C::channels_last, "NHWC memory format"),
      boolean("cudnn_benchmark", &C::cudnn_benchmark, "cuDNN autotuning"),
      choice("dist_backend", &C::dist_backend, {"auto", "nccl", "gloo"},
             "data parallel: auto = NCCL on CUDA, Gloo on CPU"),
      integer("dist_timeout", &C::dist_timeout, 1, 86400,
              "seconds a rank waits for the others before the job fails, naming the missing rank"),
      text("master_addr", &C::master_addr, "rendezvous host; empty: from the launcher's environment"),
      integer("master_port", &C::master_port, 0, 65535, "rendezvous port; 0: MASTER_PORT, else 29500"),
      number("bucket_size_mb", &C::bucket_size_mb, 0.001, 4096, "gradient all-reduce bucket size (MB)"),
      choice("grad_compression", &C::grad_compression, {"none", "fp16", "bf16"},
             "dtype gradients travel in between ranks"),
      boolean("sync_bn", &C::sync_bn, "data parallel: BatchNorm statistics over every rank's batch"),
      text("model_dir", &C::model_dir, "checkpoints, config.yaml, logs; resumes from here"),
      integer("save_checkpoint_freq", &C::save_checkpoint_freq, 1, kBig, "checkpoint every N epochs"),
      integer("checkpoint_every_steps", &C::checkpoint_every_steps, 0, kBig, "also every N updates; 0: off"),
      integer("keep_checkpoints", &C::keep_checkpoints, 1, 1000000, "newest checkpoints kept"),
      integer("epochs_between_eval", &C::epochs_between_eval, 1, kBig, "train_and_eval: eval every N epochs"),
      text("weights", &C::weights, "eval / predict / inference_benchmark: checkpoint or weights file"),
      file_name("log_filename", &C::log_filename, "DLLogger JSON-lines file inside model_dir"),
      boolean("tensorboard", &C::tensorboard, "write TensorBoard event files to <model_dir>/tensorboard"),
      text("to_predict", &C::to_predict, "predict: an image file or a directory of images"),
      integer("topk", &C::topk, 1, 1000, "predict: classes shown per image"),
      text("predict_output", &C::predict_output,
           "predict: also write the top-k classes and probabilities of every image to this JSON file"),
      number_list("batch_sizes", &C::batch_sizes, "inference_benchmark: batch sizes to sweep"),
  };
}

const std::vector<Key>& keys() {
  static const std::vector<Key> k = build_keys();
  return k;
}

const Key& find_key(const std::string& name, const std::string& where) {
  for (const auto& k : keys()) {
    if (k.info.name == name) return k;
  }
  throw std::invalid_argument(where + ": unknown key '" + name + "' (see `convnets train --help`)");
}

}  // namespace

const std::vector<ConfigKeyInfo>& config_keys() {
  static const std::vector<ConfigKeyInfo> infos = [] {
    std::vector<ConfigKeyInfo> out;
    for (const auto& k : keys()) out.push_back(k.info);
    return out;
  }();
  return infos;
}

TrainConfig default_config(const std::string& arch) {
  const ModelEntry& entry = find_model(arch);
  TrainConfig c;
  c.arch = arch;
  if (entry.family == "efficientnet") {
    // EfficientNet TF2 scripts (recipe-spec §2.8): RMSprop, lr 0.005 per 128, cosine after 5 warmup epochs,
    // Keras l2 5e-6 = 1e-5 here, EMA 0.9999, AutoAugment, 500 epochs; B4 adds mixup 0.2.
    c.optimizer = "rmsprop";
    c.lr_init = 0.005;
    c.lr_reference_batch = 128;
    c.lr_clock = "after_warmup";
    c.lr_warmup_epochs = 5;
    c.momentum = 0.9;
    c.weight_decay = 1e-5;
    c.weight_decay_exclude = "bn_and_depthwise";
    c.ema_decay = 0.9999;
    c.augmentation = "autoaugment";
    c.crop_sampler = "distorted_bbox";
    c.num_iter = 500;
    c.batch_size = entry.data.train_size >= 380 ? 160 : 1024;
    c.mixup_alpha = entry.data.train_size >= 380 ? 0.2 : 0.0;
    c.mix_symmetric_max = true;  // the TF2 recipe's mixup: lambda = max(lambda, 1 - lambda)
    c.weight_init = "fan_out";
  }
  return c;
}

void set_config_value(TrainConfig& config, const std::string& key, const std::string& value,
                      const std::string& where) {
  const Key& k = find_key(key, where);
  try {
    k.set(config, value);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + key + " = '" + value + "': expected " + e.what());
  }
}

std::vector<std::pair<std::string, std::string>> read_recipe_file(const std::string& path) {
  YAML::Node root;
  std::string text;
  try {
    text = read_file(path);  // a regular file only: a FIFO or a directory is refused, not waited on
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument("recipe '" + path + "': " + e.what());
  }
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument("recipe '" + path + "': " + e.what());
  }
  std::vector<std::pair<std::string, std::string>> out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) throw std::invalid_argument("recipe '" + path + "': expected a map of key: value");
  std::map<std::string, int> first_line;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) throw std::invalid_argument("recipe '" + path + "': a key that is not text");
    const std::string key = kv.first.Scalar();
    const int line = kv.first.Mark().line + 1;
    if (auto [it, fresh] = first_line.emplace(key, line); !fresh) {
      throw std::invalid_argument("recipe '" + path + "': key '" + key + "' is given twice (lines " +
                                  std::to_string(it->second) + " and " + std::to_string(line) + ")");
    }
    const YAML::Node& v = kv.second;
    std::string value;
    if (v.IsSequence()) {
      for (const auto& item : v) {
        if (!item.IsScalar()) throw std::invalid_argument("recipe '" + path + "': " + key + ": nested list");
        value += (value.empty() ? "" : ",") + item.Scalar();
      }
    } else if (v.IsScalar()) {
      value = v.Scalar();
    } else if (v.IsNull()) {
      value = "";
    } else {
      throw std::invalid_argument("recipe '" + path + "': " + key +
                                  ": expected a value or a list, not a map");
    }
    out.emplace_back(key, value);
  }
  return out;
}

const std::vector<std::string>& output_path_keys() {
  static const std::vector<std::string> keys = {"model_dir", "predict_output", "data_idx_dir"};
  return keys;
}

TrainConfig resolve_config(const std::string& recipe_path,
                           const std::vector<std::pair<std::string, std::string>>& flags,
                           RecipeSource source) {
  std::vector<std::pair<std::string, std::string>> recipe;
  if (!recipe_path.empty()) recipe = read_recipe_file(recipe_path);
  if (source == RecipeSource::kModelDirConfig) {
    std::erase_if(recipe, [](const auto& kv) {
      const auto& keys = output_path_keys();
      return std::find(keys.begin(), keys.end(), kv.first) != keys.end();
    });
  }
  TrainConfig arch_probe;
  std::string arch = "resnet50";
  for (const auto& [k, v] : recipe) {
    if (k == "arch")
      set_config_value(arch_probe, k, v, "recipe '" + recipe_path + "'"), arch = arch_probe.arch;
  }
  for (const auto& [k, v] : flags) {
    if (k == "arch") set_config_value(arch_probe, k, v, "flag --arch"), arch = arch_probe.arch;
  }
  TrainConfig config = default_config(arch);
  for (const auto& [k, v] : recipe) set_config_value(config, k, v, "recipe '" + recipe_path + "'");
  for (const auto& [k, v] : flags) set_config_value(config, k, v, "flag --" + k);
  check_config(config);
  return config;
}

void check_config(const TrainConfig& c) {
  const ModelEntry& entry = find_model(c.arch);
  auto fail = [](const std::string& what) { throw std::invalid_argument("configuration: " + what); };
  if (!c.interpolation.empty() && c.interpolation != "bilinear" && c.interpolation != "bicubic")
    fail("interpolation = '" + c.interpolation + "': expected bilinear or bicubic");
  if (entry.family == "resnet" && c.dropout > 0) fail("dropout: ResNets have no classifier dropout");
  if (entry.family == "resnet" && c.stochastic_depth > 0) fail("stochastic_depth: ResNets have none");
  if (entry.family == "efficientnet" && c.zero_init_residual) fail("zero_init_residual: ResNets only");
  if (entry.family == "efficientnet" && c.weight_init != "fan_out")
    fail("weight_init: EfficientNet's recipe init is fan_out only");
  if (c.amp_dtype == "fp16" && c.static_loss_scale < 0) fail("static_loss_scale must be >= 0");
  for (double b : c.batch_sizes) {
    if (b < 1 || b > 65536 || b != std::floor(b)) fail("batch_sizes: expected integers in [1, 65536]");
  }
  for (size_t i = 1; i < c.lr_step_epochs.size(); ++i) {
    if (c.lr_step_epochs[i] <= c.lr_step_epochs[i - 1]) fail("lr_step_epochs must increase");
  }
}

nlohmann::json config_to_json(const TrainConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : keys()) j[k.info.name] = k.get(config);
  return j;
}

std::string config_to_yaml(const TrainConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& k : keys()) {
    const nlohmann::json v = k.get(config);
    out << YAML::Key << k.info.name << YAML::Value;
    if (v.is_array()) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& x : v) out << x.dump();
      out << YAML::EndSeq;
    } else if (v.is_string()) {
      out << YAML::DoubleQuoted << v.get<std::string>();
    } else {
      out << v.dump();
    }
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace convnets
