#include "run/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/data_dir.h"
#include "models/registry.h"
#include "util/file_io.h"
#include "util/parse_number.h"

namespace convnets {
namespace {

// One configuration key: its help, how text becomes the typed field (throws std::invalid_argument with what
// is expected) and how the field is written back (JSON, so config.yaml and the logs agree).
struct Key {
  ConfigKeyInfo info;
  std::function<void(RunConfig&, const std::string&)> set;
  std::function<nlohmann::json(const RunConfig&)> get;
};

// The group a field's struct belongs to.
template <typename G>
constexpr KeyGroup group_of();
template <>
constexpr KeyGroup group_of<ModelConfig>() {
  return KeyGroup::kModel;
}
template <>
constexpr KeyGroup group_of<InitConfig>() {
  return KeyGroup::kInit;
}
template <>
constexpr KeyGroup group_of<WeightsConfig>() {
  return KeyGroup::kWeights;
}
template <>
constexpr KeyGroup group_of<DataConfig>() {
  return KeyGroup::kData;
}
template <>
constexpr KeyGroup group_of<TrainInputConfig>() {
  return KeyGroup::kTrainInput;
}
template <>
constexpr KeyGroup group_of<EvalInputConfig>() {
  return KeyGroup::kEvalInput;
}
template <>
constexpr KeyGroup group_of<IterationConfig>() {
  return KeyGroup::kIterations;
}
template <>
constexpr KeyGroup group_of<OptimConfig>() {
  return KeyGroup::kOptimisation;
}
template <>
constexpr KeyGroup group_of<ScheduleConfig>() {
  return KeyGroup::kSchedule;
}
template <>
constexpr KeyGroup group_of<MixingConfig>() {
  return KeyGroup::kMixing;
}
template <>
constexpr KeyGroup group_of<ProgressiveConfig>() {
  return KeyGroup::kProgressive;
}
template <>
constexpr KeyGroup group_of<PrecisionConfig>() {
  return KeyGroup::kPrecision;
}
template <>
constexpr KeyGroup group_of<CpuConfig>() {
  return KeyGroup::kCpu;
}
template <>
constexpr KeyGroup group_of<ParallelConfig>() {
  return KeyGroup::kParallel;
}
template <>
constexpr KeyGroup group_of<CheckpointConfig>() {
  return KeyGroup::kCheckpoints;
}
template <>
constexpr KeyGroup group_of<OutputConfig>() {
  return KeyGroup::kOutput;
}
template <>
constexpr KeyGroup group_of<PredictConfig>() {
  return KeyGroup::kPredict;
}
template <>
constexpr KeyGroup group_of<BenchmarkConfig>() {
  return KeyGroup::kBenchmark;
}
template <>
constexpr KeyGroup group_of<ExportConfig>() {
  return KeyGroup::kExport;
}
template <>
constexpr KeyGroup group_of<Int8Config>() {
  return KeyGroup::kInt8;
}
template <>
constexpr KeyGroup group_of<CalibrationConfig>() {
  return KeyGroup::kCalibration;
}
template <>
constexpr KeyGroup group_of<QatConfig>() {
  return KeyGroup::kQat;
}

// A field of RunConfig: its group struct and the member in it.
template <typename G, typename T>
struct Field {
  G RunConfig::*group;
  T G::*member;
  T& of(RunConfig& c) const { return (c.*group).*member; }
  const T& of(const RunConfig& c) const { return (c.*group).*member; }
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "", "null", "~", "none": an optional key left unset (the architecture's or the weights' value).
bool is_unset(const std::string& t) {
  return t.empty() || t == "null" || t == "~" || t == "none";
}

// What 0 is for an optional key: a value, or the same as empty (sizes and fractions, which earlier versions
// wrote as 0 for "the default": their config.yaml files still read).
enum class ZeroMeans { kZero, kUnset };

double parse_double(const std::string& text) {
  const std::optional<double> v = parse_finite_double(trim(text));
  if (!v) throw std::invalid_argument("a number");
  return *v;
}

int64_t parse_int(const std::string& text) {
  const std::optional<int64_t> v = parse_int64(trim(text));
  if (!v) throw std::invalid_argument("an integer");
  return *v;
}

bool parse_bool(const std::string& text) {
  const std::string t = trim(text);
  if (t == "true" || t == "True" || t == "1" || t == "yes" || t == "on") return true;
  if (t == "false" || t == "False" || t == "0" || t == "no" || t == "off") return false;
  throw std::invalid_argument("true or false");
}

std::vector<double> parse_number_list(const std::string& text) {
  std::vector<double> out;
  std::string t = trim(text);
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
  return out;
}

template <typename G>
Key number(const char* name, Field<G, double> f, double lo, double hi, const char* help) {
  return {{name, "number", help, KeyType::kNumber, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            const double x = parse_double(v);
            if (x < lo || x > hi) {
              std::ostringstream os;
              os << "a number in [" << lo << ", " << hi << "]";
              throw std::invalid_argument(os.str());
            }
            f.of(c) = x;
          },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

template <typename G>
Key integer(const char* name, Field<G, int64_t> f, int64_t lo, int64_t hi, const char* help) {
  return {{name, "integer", help, KeyType::kInteger, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            const int64_t x = parse_int(v);
            if (x < lo || x > hi) {
              throw std::invalid_argument("an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                          "]");
            }
            f.of(c) = x;
          },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

template <typename G>
Key boolean(const char* name, Field<G, bool> f, const char* help) {
  return {{name, "bool", help, KeyType::kBool, group_of<G>()},
          [=](RunConfig& c, const std::string& v) { f.of(c) = parse_bool(v); },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

template <typename G>
Key text(const char* name, Field<G, std::string> f, const char* help) {
  return {{name, "text", help, KeyType::kText, group_of<G>()},
          [=](RunConfig& c, const std::string& v) { f.of(c) = trim(v); },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

// An output file created inside model_dir: a plain name, so no configuration can point it elsewhere.
template <typename G>
Key file_name(const char* name, Field<G, std::string> f, const char* help) {
  return {{name, "text", help, KeyType::kText, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            const std::string t = trim(v);
            try {
              check_plain_file_name(t, name);
            } catch (const std::invalid_argument&) {
              throw std::invalid_argument("a plain file name (created inside model_dir; no '/' or '..')");
            }
            f.of(c) = t;
          },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

// The names of an enum's values, in order: what the key accepts and writes.
template <typename E>
using Names = std::vector<std::pair<std::string, E>>;

template <typename E>
std::string names_list(const Names<E>& names) {
  std::string list;
  for (const auto& [n, v] : names) list += (list.empty() ? "" : " | ") + n;
  return list;
}

template <typename G, typename E>
Key choice(const char* name, Field<G, E> f, Names<E> names, const char* help) {
  const std::string list = names_list(names);
  return {{name, list, help, KeyType::kChoice, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            const std::string t = trim(v);
            for (const auto& [n, value] : names) {
              if (t == n) {
                f.of(c) = value;
                return;
              }
            }
            throw std::invalid_argument("one of " + list);
          },
          [=](const RunConfig& c) {
            for (const auto& [n, value] : names) {
              if (f.of(c) == value) return nlohmann::json(n);
            }
            return nlohmann::json("");
          }};
}

// A choice that may be left unset (empty: the architecture's default).
template <typename G, typename E>
Key optional_choice(const char* name, Field<G, std::optional<E>> f, Names<E> names, const char* help) {
  const std::string list = names_list(names);
  return {{name, list, help, KeyType::kChoice, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            const std::string t = trim(v);
            if (is_unset(t)) {
              f.of(c).reset();
              return;
            }
            for (const auto& [n, value] : names) {
              if (t == n) {
                f.of(c) = value;
                return;
              }
            }
            throw std::invalid_argument("one of " + list + ", or empty for the architecture's");
          },
          [=](const RunConfig& c) {
            for (const auto& [n, value] : names) {
              if (f.of(c) == value) return nlohmann::json(n);
            }
            return nlohmann::json("");
          }};
}

template <typename G>
Key optional_number(const char* name, Field<G, std::optional<double>> f, double lo, double hi,
                    const char* help, ZeroMeans zero = ZeroMeans::kZero) {
  return {{name, "number", help, KeyType::kNumber, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            if (is_unset(trim(v))) {
              f.of(c).reset();
              return;
            }
            const double x = parse_double(v);
            if (x == 0 && zero == ZeroMeans::kUnset) {
              f.of(c).reset();
              return;
            }
            if (x < lo || x > hi) {
              std::ostringstream os;
              os << "a number in [" << lo << ", " << hi << "], or empty for the default";
              throw std::invalid_argument(os.str());
            }
            f.of(c) = x;
          },
          [=](const RunConfig& c) { return f.of(c) ? nlohmann::json(*f.of(c)) : nlohmann::json(""); }};
}

template <typename G>
Key optional_integer(const char* name, Field<G, std::optional<int64_t>> f, int64_t lo, int64_t hi,
                     const char* help, ZeroMeans zero = ZeroMeans::kZero) {
  return {{name, "integer", help, KeyType::kInteger, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            if (is_unset(trim(v))) {
              f.of(c).reset();
              return;
            }
            const int64_t x = parse_int(v);
            if (x == 0 && zero == ZeroMeans::kUnset) {
              f.of(c).reset();
              return;
            }
            if (x < lo || x > hi)
              throw std::invalid_argument("an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                          "], or empty for the default");
            f.of(c) = x;
          },
          [=](const RunConfig& c) { return f.of(c) ? nlohmann::json(*f.of(c)) : nlohmann::json(""); }};
}

// Three numbers in (lo, hi] (per-channel RGB values), or unset.
template <typename G>
Key optional_triple(const char* name, Field<G, std::optional<std::array<double, 3>>> f, double lo, double hi,
                    const char* help) {
  std::ostringstream os;
  os << "three comma-separated numbers in [" << lo << ", " << hi << "] (R, G, B), or empty for the default";
  const std::string expected = os.str();
  return {{name, "list of numbers", help, KeyType::kNumberList, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            if (is_unset(trim(v))) {
              f.of(c).reset();
              return;
            }
            std::vector<double> x;
            try {
              x = parse_number_list(v);
            } catch (const std::invalid_argument&) {
              throw std::invalid_argument(expected);
            }
            if (x.size() != 3) throw std::invalid_argument(expected);
            for (double d : x)
              if (d < lo || d > hi) throw std::invalid_argument(expected);
            f.of(c) = std::array<double, 3>{x[0], x[1], x[2]};
          },
          [=](const RunConfig& c) {
            return f.of(c) ? nlohmann::json(std::vector<double>(f.of(c)->begin(), f.of(c)->end()))
                           : nlohmann::json("");
          }};
}

template <typename G>
Key number_list(const char* name, Field<G, std::vector<double>> f, const char* help) {
  return {{name, "list of numbers", help, KeyType::kNumberList, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            std::vector<double> out = parse_number_list(v);
            for (size_t i = 1; i < out.size(); ++i) {
              if (out[i] <= out[i - 1]) throw std::invalid_argument("increasing numbers");
            }
            f.of(c) = out;
          },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

template <typename G>
Key integer_list(const char* name, Field<G, std::vector<int64_t>> f, int64_t lo, int64_t hi,
                 const char* help) {
  const std::string expected = "integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return {{name, "list of integers", help, KeyType::kIntegerList, group_of<G>()},
          [=](RunConfig& c, const std::string& v) {
            std::vector<int64_t> out;
            try {
              for (double x : parse_number_list(v)) {
                if (x < static_cast<double>(lo) || x > static_cast<double>(hi) || x != std::floor(x))
                  throw std::invalid_argument(expected);
                out.push_back(static_cast<int64_t>(x));
              }
            } catch (const std::invalid_argument&) {
              throw std::invalid_argument(expected);
            }
            f.of(c) = out;
          },
          [=](const RunConfig& c) { return nlohmann::json(f.of(c)); }};
}

constexpr int64_t kBig = std::numeric_limits<int64_t>::max() / 4;
constexpr double kHuge = 1e300;

std::vector<Key> build_keys() {
  using C = RunConfig;
  using M = ModelConfig;
  using I = InitConfig;
  using D = DataConfig;
  using T = TrainInputConfig;
  using E = EvalInputConfig;
  using It = IterationConfig;
  using O = OptimConfig;
  using S = ScheduleConfig;
  using X = MixingConfig;
  using P = ProgressiveConfig;
  using Pr = PrecisionConfig;
  using Cp = CpuConfig;
  using Pa = ParallelConfig;
  using Ck = CheckpointConfig;
  using Ou = OutputConfig;
  using Pd = PredictConfig;
  using Ex = ExportConfig;
  using Q8 = Int8Config;
  using Q = CalibrationConfig;
  Names<std::string> archs;
  for (const auto& n : model_names()) archs.emplace_back(n, n);
  return {
      // Model.
      choice("arch", Field<M, std::string>{&C::model, &M::arch}, archs, "architecture"),
      integer("num_classes", Field<M, int64_t>{&C::model, &M::num_classes}, 1, 1 << 20, "classifier outputs"),
      optional_number("dropout", Field<M, std::optional<double>>{&C::model, &M::dropout}, 0, 0.99,
                      "classifier dropout (EfficientNet); empty: the architecture's"),
      optional_number("stochastic_depth", Field<M, std::optional<double>>{&C::model, &M::stochastic_depth}, 0,
                      0.99, "final drop rate of stochastic depth (EfficientNet); empty: the architecture's"),
      optional_number(
          "bn_eps", Field<M, std::optional<double>>{&C::model, &M::bn_eps}, 1e-12, 1,
          "BatchNorm epsilon; empty: the weights' own (torchvision / timm: 1e-5), else the recipe's"),
      optional_number(
          "bn_momentum", Field<M, std::optional<double>>{&C::model, &M::bn_momentum}, 1e-12, 1,
          "BatchNorm momentum (PyTorch convention); empty: the weights' own (0.1), else the recipe's"),
      optional_integer(
          "se_width", Field<M, std::optional<int64_t>>{&C::model, &M::se_width}, 1, 1 << 16,
          "SE-ResNeXt: one squeeze-excitation width for every stage (NVIDIA's PyTorch models: 16); "
          "empty: C / 16 per stage (timm, TF1)"),
      optional_choice(
          "padding", Field<M, std::optional<Padding>>{&C::model, &M::padding},
          Names<Padding>{{"symmetric", Padding::kSymmetric}, {"same", Padding::kSame}},
          "EfficientNet V2 convolution padding: torchvision's symmetric or TensorFlow's same (timm's "
          "tf_ models); empty: the weights' layout's, else the architecture's"),
      // Initialisation.
      text("finetune_from", Field<I, std::string>{&C::init, &I::finetune_from},
           "start from these weights (only a classifier of another shape is skipped)"),
      boolean("zero_init_residual", Field<I, bool>{&C::init, &I::zero_init_residual},
              "ResNet: zero-init the last BN gamma per block"),
      choice("weight_init", Field<I, FanMode>{&C::init, &I::weight_init},
             Names<FanMode>{{"fan_in", FanMode::kFanIn}, {"fan_out", FanMode::kFanOut}},
             "ResNet variance-scaling init mode"),
      // Weights.
      text("weights", Field<WeightsConfig, std::string>{&C::weights, &WeightsConfig::weights},
           "checkpoint or weights file (default: the newest checkpoint in model_dir)"),
      // Data.
      text("data_dir", Field<D, std::string>{&C::data, &D::data_dir},
           "TFRecords (train-*, validation-*) or image folders (train/, val/); empty: synthetic data"),
      text("data_idx_dir", Field<D, std::string>{&C::data, &D::data_idx_dir},
           "DALI index files (default <data_dir>/idx, built when absent)"),
      text("class_names", Field<D, std::string>{&C::data, &D::class_names},
           "file with one class name per line"),
      optional_choice(
          "interpolation", Field<D, std::optional<Interpolation>>{&C::data, &D::interpolation},
          Names<Interpolation>{{"bilinear", Interpolation::kBilinear}, {"bicubic", Interpolation::kBicubic}},
          "resampling filter; empty: architecture default"),
      integer("workers", Field<D, int64_t>{&C::data, &D::workers}, 1, 256, "decode threads"),
      integer("max_image_pixels", Field<D, int64_t>{&C::data, &D::max_image_pixels}, 1, int64_t{1} << 40,
              "images whose header claims more pixels are refused before decoding (decompression bombs)"),
      integer("prefetch", Field<D, int64_t>{&C::data, &D::prefetch}, 1, 64,
              "batches ready ahead, per worker"),
      boolean("strict_data", Field<D, bool>{&C::data, &D::strict_data},
              "a bad record is an error instead of a counted skip"),
      optional_triple(
          "mean", Field<D, std::optional<std::array<double, 3>>>{&C::data, &D::mean}, 0, 1,
          "normalisation mean (RGB, 0..1 scale); empty: the weights' (timm's tf_ V2: 0.5), else the "
          "architecture's"),
      optional_triple("std", Field<D, std::optional<std::array<double, 3>>>{&C::data, &D::std}, 1e-6, 1,
                      "normalisation std (RGB, 0..1 scale); empty: as mean"),
      // Training input.
      optional_integer("image_size", Field<T, std::optional<int64_t>>{&C::train_input, &T::image_size}, 1,
                       4096, "train resolution; empty: the architecture's", ZeroMeans::kUnset),
      choice("crop_sampler", Field<T, CropSampler>{&C::train_input, &T::crop_sampler},
             Names<CropSampler>{{"distorted_bbox", CropSampler::kDistortedBoundingBox},
                                {"resized_crop", CropSampler::kResizedCrop}},
             "train crop sampler"),
      optional_number("crop_min_area", Field<T, std::optional<double>>{&C::train_input, &T::crop_min_area},
                      1e-6, 1, "smallest train crop area; empty: the sampler's", ZeroMeans::kUnset),
      choice("augmentation", Field<T, Augmentation>{&C::train_input, &T::augmentation},
             Names<Augmentation>{{"none", Augmentation::kNone},
                                 {"autoaugment", Augmentation::kAutoAugment},
                                 {"randaugment", Augmentation::kRandAugment}},
             "policy"),
      integer("randaug_layers", Field<T, int64_t>{&C::train_input, &T::randaug_layers}, 1, 10,
              "RandAugment ops per image"),
      number("randaug_magnitude", Field<T, double>{&C::train_input, &T::randaug_magnitude}, 0, 30,
             "RandAugment magnitude"),
      // Evaluation input.
      optional_integer("eval_image_size",
                       Field<E, std::optional<int64_t>>{&C::eval_input, &E::eval_image_size}, 1, 4096,
                       "eval resolution; empty: the architecture's", ZeroMeans::kUnset),
      optional_number("eval_crop_pct", Field<E, std::optional<double>>{&C::eval_input, &E::eval_crop_pct},
                      1e-6, 1, "eval crop fraction (see eval_crop_mode); empty: the architecture's",
                      ZeroMeans::kUnset),
      optional_choice(
          "eval_crop_mode", Field<E, std::optional<CropMode>>{&C::eval_input, &E::eval_crop_mode},
          Names<CropMode>{{"center", CropMode::kCenter},
                          {"center_crop", CropMode::kCenterCrop},
                          {"squash", CropMode::kSquash}},
          "center: shorter side to size / crop_pct, centre crop (torchvision, timm); center_crop: "
          "centre crop_pct of the shorter side, resize (TensorFlow); squash: the whole image to size; "
          "empty: the architecture's"),
      optional_integer("eval_batch_size",
                       Field<E, std::optional<int64_t>>{&C::eval_input, &E::eval_batch_size}, 1, 1 << 20,
                       "per-process eval batch; empty: batch_size", ZeroMeans::kUnset),
      // Iterations.
      integer("batch_size", Field<It, int64_t>{&C::iterations, &It::batch_size}, 1, 1 << 20,
              "per-process micro-batch"),
      integer("num_iter", Field<It, int64_t>{&C::iterations, &It::num_iter}, 1, kBig,
              "number of iter_units to run"),
      choice("iter_unit", Field<It, IterUnit>{&C::iterations, &It::iter_unit},
             Names<IterUnit>{{"epoch", IterUnit::kEpoch}, {"batch", IterUnit::kBatch}}, "unit of num_iter"),
      integer("warmup_steps", Field<It, int64_t>{&C::iterations, &It::warmup_steps}, 0, kBig,
              "benchmark steps left out of the statistics"),
      integer("seed", Field<It, int64_t>{&C::iterations, &It::seed}, 0, kBig,
              "seed of data order, augmentation and init"),
      // Optimisation.
      choice("optimizer", Field<O, OptimizerKind>{&C::optim, &O::optimizer},
             Names<OptimizerKind>{{"momentum", OptimizerKind::kMomentum},
                                  {"rmsprop", OptimizerKind::kRmsprop},
                                  {"adamw", OptimizerKind::kAdamw}},
             "update rule"),
      // 1000 is far above any learning rate that trains; the scaled rate must stay finite in float32.
      number("lr_init", Field<O, double>{&C::optim, &O::lr_init}, 0, 1000,
             "learning rate per lr_reference_batch images"),
      integer("lr_reference_batch", Field<O, int64_t>{&C::optim, &O::lr_reference_batch}, 1, kBig,
              "linear-scaling reference batch"),
      integer("grad_accum_steps", Field<O, int64_t>{&C::optim, &O::grad_accum_steps}, 1, 1 << 16,
              "micro-batches per optimizer update"),
      integer("max_nonfinite_steps", Field<O, int64_t>{&C::optim, &O::max_nonfinite_steps}, 0, 1000000,
              "stop with an error after this many consecutive non-finite losses (steps the fp16 loss "
              "scaler skipped aside); 0: never"),
      number("momentum", Field<O, double>{&C::optim, &O::momentum}, 0, 1, "momentum (SGD, RMSprop)"),
      boolean("nesterov", Field<O, bool>{&C::optim, &O::nesterov}, "Nesterov momentum (SGD)"),
      number("rmsprop_rho", Field<O, double>{&C::optim, &O::rmsprop_rho}, 0, 1,
             "RMSprop decay of the mean square"),
      number("opt_epsilon", Field<O, double>{&C::optim, &O::opt_epsilon}, 0, 1, "RMSprop / AdamW epsilon"),
      number("beta1", Field<O, double>{&C::optim, &O::beta1}, 0, 1, "AdamW beta1"),
      number("beta2", Field<O, double>{&C::optim, &O::beta2}, 0, 1, "AdamW beta2"),
      number("weight_decay", Field<O, double>{&C::optim, &O::weight_decay}, 0, 1,
             "L2, PyTorch convention (gradient += wd * w)"),
      choice("weight_decay_exclude", Field<O, WeightDecayExclude>{&C::optim, &O::weight_decay_exclude},
             Names<WeightDecayExclude>{{"bn", WeightDecayExclude::kBatchNorm},
                                       {"bn_and_depthwise", WeightDecayExclude::kBatchNormAndDepthwise}},
             "no decay for"),
      number("label_smoothing", Field<O, double>{&C::optim, &O::label_smoothing}, 0, 0.99,
             "label smoothing epsilon"),
      number("ema_decay", Field<O, double>{&C::optim, &O::ema_decay}, 0, 1,
             "EMA of weights and BN statistics; 0: off"),
      number("grad_clip_norm", Field<O, double>{&C::optim, &O::grad_clip_norm}, 0, kHuge,
             "global gradient-norm clip; 0: off"),
      // Learning-rate schedule.
      choice("lr_schedule", Field<S, LrScheduleKind>{&C::schedule, &S::lr_schedule},
             Names<LrScheduleKind>{{"cosine", LrScheduleKind::kCosine},
                                   {"step", LrScheduleKind::kStep},
                                   {"exponential", LrScheduleKind::kExponential},
                                   {"constant", LrScheduleKind::kConstant}},
             "decay"),
      choice("lr_clock", Field<S, LrClock>{&C::schedule, &S::lr_clock},
             Names<LrClock>{{"global", LrClock::kGlobal}, {"after_warmup", LrClock::kAfterWarmup}},
             "what step the decay sees"),
      number("lr_warmup_epochs", Field<S, double>{&C::schedule, &S::lr_warmup_epochs}, 0, 1e6,
             "linear warmup from 0"),
      number_list("lr_step_epochs", Field<S, std::vector<double>>{&C::schedule, &S::lr_step_epochs},
                  "step schedule boundaries (epochs)"),
      number("lr_step_factor", Field<S, double>{&C::schedule, &S::lr_step_factor}, 0, 1,
             "step schedule factor per boundary"),
      number("lr_decay_rate", Field<S, double>{&C::schedule, &S::lr_decay_rate}, 0, 1,
             "exponential schedule rate"),
      number("lr_decay_epochs", Field<S, double>{&C::schedule, &S::lr_decay_epochs}, 1e-6, 1e6,
             "exponential schedule interval"),
      // Mixing.
      number("mixup_alpha", Field<X, double>{&C::mixing, &X::mixup_alpha}, 0, 100,
             "mixup Beta alpha; 0: off"),
      number("cutmix_alpha", Field<X, double>{&C::mixing, &X::cutmix_alpha}, 0, 100,
             "CutMix Beta alpha; 0: off"),
      boolean("mix_per_example", Field<X, bool>{&C::mixing, &X::mix_per_example},
              "one mixing weight per example (TF) or per batch"),
      choice("mix_partner", Field<X, MixPartner>{&C::mixing, &X::mix_partner},
             Names<MixPartner>{{"reverse", MixPartner::kReverse}, {"permute", MixPartner::kPermute}},
             "mixing partner of example i"),
      boolean("mix_symmetric_max", Field<X, bool>{&C::mixing, &X::mix_symmetric_max},
              "mixup weight max(lambda, 1 - lambda): each example keeps the larger share (EfficientNet TF2)"),
      // Progressive training.
      integer("n_stages", Field<P, int64_t>{&C::progressive, &P::n_stages}, 1, 100,
              "progressive training stages"),
      integer("base_image_size", Field<P, int64_t>{&C::progressive, &P::base_image_size}, 16, 4096,
              "progressive: size before stage 0"),
      number("base_mixup", Field<P, double>{&C::progressive, &P::base_mixup}, 0, 100,
             "progressive: stage-0 mixup alpha"),
      number("base_cutmix", Field<P, double>{&C::progressive, &P::base_cutmix}, 0, 100,
             "progressive: stage-0 CutMix alpha"),
      number("base_randaug_magnitude", Field<P, double>{&C::progressive, &P::base_randaug_magnitude}, 0, 30,
             "progressive: stage-0 magnitude"),
      // Device and precision.
      choice("device", Field<Pr, DeviceKind>{&C::precision, &Pr::device},
             Names<DeviceKind>{
                 {"auto", DeviceKind::kAuto}, {"cpu", DeviceKind::kCpu}, {"cuda", DeviceKind::kCuda}},
             "auto: CUDA when present"),
      integer("cuda_device", Field<Pr, int64_t>{&C::precision, &Pr::cuda_device}, -1, 1023,
              "GPU index of this process; -1: LOCAL_RANK (ranks may share one GPU with the gloo backend)"),
      boolean("amp", Field<Pr, bool>{&C::precision, &Pr::amp}, "mixed precision (autocast; CPU: bf16)"),
      choice("amp_dtype", Field<Pr, AmpDtype>{&C::precision, &Pr::amp_dtype},
             Names<AmpDtype>{{"bf16", AmpDtype::kBf16}, {"fp16", AmpDtype::kFp16}},
             "autocast type on CUDA (fp16: loss scaling)"),
      number("static_loss_scale", Field<Pr, double>{&C::precision, &Pr::static_loss_scale}, 0, 1e9,
             "fp16 static loss scale; 0: dynamic"),
      boolean("tf32", Field<Pr, bool>{&C::precision, &Pr::tf32}, "TF32 matmul/convolution on Ampere+"),
      boolean("channels_last", Field<Pr, bool>{&C::precision, &Pr::channels_last}, "NHWC memory format"),
      boolean("cudnn_benchmark", Field<Pr, bool>{&C::precision, &Pr::cudnn_benchmark}, "cuDNN autotuning"),
      boolean(
          "inference_form", Field<Pr, bool>{&C::precision, &Pr::inference_form},
          "evaluate / predict / benchmark the inference form (BatchNorm folded; fused oneDNN kernels on the "
          "CPU, bf16 with --amp where the CPU has it); false: the eager training-form model"),
      // CPU.
      integer("cpu_threads", Field<Cp, int64_t>{&C::cpu, &Cp::cpu_threads}, 0, 4096,
              "CPU threads of LibTorch and oneDNN (one OpenMP pool); 0: OMP_NUM_THREADS, else every core"),
      choice("cpu_inference", Field<Cp, CpuInferenceKernels>{&C::cpu, &Cp::cpu_inference},
             Names<CpuInferenceKernels>{{"plan", CpuInferenceKernels::kPlan},
                                        {"fused", CpuInferenceKernels::kFused}},
             "the CPU inference form's kernels: plan = a fixed oneDNN plan (primitives, weights and buffers "
             "made once per input shape), fused = LibTorch's fused oneDNN ops"),
      choice("cpu_activation_layout", Field<Cp, ActivationLayout>{&C::cpu, &Cp::cpu_activation_layout},
             Names<ActivationLayout>{{"auto", ActivationLayout::kAuto},
                                     {"nhwc", ActivationLayout::kNhwc},
                                     {"nchw8c", ActivationLayout::kBlocked8},
                                     {"nchw16c", ActivationLayout::kBlocked16}},
             "the oneDNN plan's activation layout; auto: nhwc (the fastest measured, and every op has an "
             "optimised kernel in it)"),
      boolean("cpu_autotune", Field<Cp, bool>{&C::cpu, &Cp::cpu_autotune},
              "the oneDNN plan times each convolution's implementations when it is built and keeps the "
              "fastest (like cudnn_benchmark; logits may then differ between runs in their last bits)"),
      boolean("cpu_winograd", Field<Cp, bool>{&C::cpu, &Cp::cpu_winograd},
              "the oneDNN plan runs 3x3 stride-1 convolutions with >= 64 channels as Winograd F(4x4, 3x3) on "
              "oneDNN's matmul (a quarter of the multiplications; float32 within the plan's tested bound); "
              "false: every convolution direct"),
      // Data parallel.
      choice("dist_backend", Field<Pa, DistBackend>{&C::parallel, &Pa::dist_backend},
             Names<DistBackend>{
                 {"auto", DistBackend::kAuto}, {"nccl", DistBackend::kNccl}, {"gloo", DistBackend::kGloo}},
             "data parallel: auto = NCCL on CUDA, Gloo on CPU"),
      integer("dist_timeout", Field<Pa, int64_t>{&C::parallel, &Pa::dist_timeout}, 1, 86400,
              "seconds a rank waits for the others before the job fails, naming the missing rank"),
      text("master_addr", Field<Pa, std::string>{&C::parallel, &Pa::master_addr},
           "rendezvous host; empty: from the launcher's environment"),
      integer("master_port", Field<Pa, int64_t>{&C::parallel, &Pa::master_port}, 0, 65535,
              "rendezvous port; 0: MASTER_PORT, else 29500"),
      number("bucket_size_mb", Field<Pa, double>{&C::parallel, &Pa::bucket_size_mb}, 0.001, 4096,
             "gradient all-reduce bucket size (MB)"),
      choice("grad_compression", Field<Pa, GradCompression>{&C::parallel, &Pa::grad_compression},
             Names<GradCompression>{{"none", GradCompression::kNone},
                                    {"fp16", GradCompression::kFp16},
                                    {"bf16", GradCompression::kBf16}},
             "dtype gradients travel in between ranks"),
      boolean("sync_bn", Field<Pa, bool>{&C::parallel, &Pa::sync_bn},
              "data parallel: BatchNorm statistics over every rank's batch"),
      // Checkpoints and evaluation during training.
      integer("save_checkpoint_freq", Field<Ck, int64_t>{&C::checkpoints, &Ck::save_checkpoint_freq}, 1, kBig,
              "checkpoint every N epochs"),
      integer("checkpoint_every_steps", Field<Ck, int64_t>{&C::checkpoints, &Ck::checkpoint_every_steps}, 0,
              kBig, "also every N updates; 0: off"),
      integer("keep_checkpoints", Field<Ck, int64_t>{&C::checkpoints, &Ck::keep_checkpoints}, 1, 1000000,
              "newest checkpoints kept"),
      integer("epochs_between_eval", Field<Ck, int64_t>{&C::checkpoints, &Ck::epochs_between_eval}, 1, kBig,
              "train_and_eval: eval every N epochs"),
      // Run directory and logs.
      text("model_dir", Field<Ou, std::string>{&C::output, &Ou::model_dir},
           "checkpoints, config.yaml, logs; resumes from here"),
      file_name("log_filename", Field<Ou, std::string>{&C::output, &Ou::log_filename},
                "DLLogger JSON-lines file inside model_dir"),
      boolean("tensorboard", Field<Ou, bool>{&C::output, &Ou::tensorboard},
              "write TensorBoard event files to <model_dir>/tensorboard"),
      integer("display_every", Field<Ou, int64_t>{&C::output, &Ou::display_every}, 1, kBig,
              "log every N steps"),
      // Prediction.
      text("to_predict", Field<Pd, std::string>{&C::predict, &Pd::to_predict},
           "an image file or a directory of images"),
      integer("topk", Field<Pd, int64_t>{&C::predict, &Pd::topk}, 1, 1000, "classes shown per image"),
      text("predict_output", Field<Pd, std::string>{&C::predict, &Pd::predict_output},
           "also write the top-k classes and probabilities of every image to this JSON file"),
      choice(
          "output", Field<Pd, PredictFormat>{&C::predict, &Pd::output},
          Names<PredictFormat>{
              {"text", PredictFormat::kText}, {"json", PredictFormat::kJson}, {"csv", PredictFormat::kCsv}},
          "what predict prints on stdout: a table, JSON or CSV (machine-readable; messages go to stderr)"),
      // Inference benchmark.
      integer_list("batch_sizes",
                   Field<BenchmarkConfig, std::vector<int64_t>>{&C::benchmark, &BenchmarkConfig::batch_sizes},
                   1, 65536, "batch sizes to sweep"),
      // Export.
      text("onnx_output", Field<Ex, std::string>{&C::exporting, &Ex::onnx_output}, "the ONNX file to write"),
      optional_integer("export_image_size",
                       Field<Ex, std::optional<int64_t>>{&C::exporting, &Ex::export_image_size}, 1, 4096,
                       "input resolution of the exported model; empty: the eval size", ZeroMeans::kUnset),
      boolean("export_probabilities", Field<Ex, bool>{&C::exporting, &Ex::export_probabilities},
              "also output `probabilities` (Softmax) and `classes` (TopK of export_topk)"),
      integer("export_topk", Field<Ex, int64_t>{&C::exporting, &Ex::export_topk}, 1, 1000,
              "classes in the `classes` output"),
      boolean("export_fp16", Field<Ex, bool>{&C::exporting, &Ex::export_fp16},
              "half-precision weights and compute; float32 input and outputs"),
      text("triton_repository", Field<Ex, std::string>{&C::exporting, &Ex::triton_repository},
           "write DIR/NAME/{config.pbtxt, 1/model.onnx, labels.txt}"),
      text("triton_model_name", Field<Ex, std::string>{&C::exporting, &Ex::triton_model_name},
           "NAME; empty: the architecture"),
      integer("triton_max_batch_size", Field<Ex, int64_t>{&C::exporting, &Ex::triton_max_batch_size}, 1,
              int64_t{1} << 20, "Triton's max_batch_size"),
      choice("triton_instance_kind", Field<Ex, TritonInstanceKind>{&C::exporting, &Ex::triton_instance_kind},
             Names<TritonInstanceKind>{{"gpu", TritonInstanceKind::kGpu}, {"cpu", TritonInstanceKind::kCpu}},
             "instance_group kind"),
      integer("triton_instances", Field<Ex, int64_t>{&C::exporting, &Ex::triton_instances}, 1, 64,
              "instances per device"),
      boolean("triton_tensorrt_fp16", Field<Ex, bool>{&C::exporting, &Ex::triton_tensorrt_fp16},
              "GPU: ONNX Runtime's TensorRT execution accelerator in FP16"),
      integer("triton_max_queue_delay_us", Field<Ex, int64_t>{&C::exporting, &Ex::triton_max_queue_delay_us},
              0, 10000000, "dynamic batching: longest wait to fill a batch (microseconds)"),
      // int8.
      boolean("int8", Field<Q8, bool>{&C::int8, &Q8::int8},
              "run the model quantized to int8 with the ranges `convnets quantize` wrote into model_dir"),
      boolean("qat", Field<QatConfig, bool>{&C::qat, &QatConfig::qat},
              "quantization-aware training: int8 rounding (straight-through gradients) where the int8 form "
              "rounds, "
              "at fixed ranges: model_dir's or --finetune_from's quantization, else calibrated first"),
      integer("calibration_images", Field<Q, int64_t>{&C::calibration, &Q::calibration_images}, 1,
              int64_t{1} << 30,
              "quantize (and QAT without a calibration): real images run through the model to measure "
              "activation ranges"),
      choice("calibration_method", Field<Q, CalibrationMethod>{&C::calibration, &Q::calibration_method},
             Names<CalibrationMethod>{{"percentile", CalibrationMethod::kPercentile},
                                      {"entropy", CalibrationMethod::kEntropy},
                                      {"max", CalibrationMethod::kMax}},
             "an activation's range from its |x| histogram: percentile (calibration_percentile), "
             "entropy (the clipping with the least KL divergence) or max"),
      number("calibration_percentile", Field<Q, double>{&C::calibration, &Q::calibration_percentile}, 50, 100,
             "the percentile of |x| taken as the range (NVIDIA's 99.99)"),
      choice("calibration_split", Field<Q, CalibrationSplit>{&C::calibration, &Q::calibration_split},
             Names<CalibrationSplit>{{"train", CalibrationSplit::kTrain}, {"eval", CalibrationSplit::kEval}},
             "the data_dir split whose images calibrate (eval transform, first images in order)"),
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

const char* key_group_title(KeyGroup group) {
  switch (group) {
    case KeyGroup::kModel:
      return "Model";
    case KeyGroup::kInit:
      return "Initialisation";
    case KeyGroup::kWeights:
      return "Weights";
    case KeyGroup::kData:
      return "Data";
    case KeyGroup::kTrainInput:
      return "Training input";
    case KeyGroup::kEvalInput:
      return "Evaluation input";
    case KeyGroup::kIterations:
      return "Iterations";
    case KeyGroup::kOptimisation:
      return "Optimisation";
    case KeyGroup::kSchedule:
      return "Learning-rate schedule";
    case KeyGroup::kMixing:
      return "Mixup and CutMix";
    case KeyGroup::kProgressive:
      return "Progressive training";
    case KeyGroup::kPrecision:
      return "Device and precision";
    case KeyGroup::kCpu:
      return "CPU";
    case KeyGroup::kParallel:
      return "Data parallel";
    case KeyGroup::kCheckpoints:
      return "Checkpoints";
    case KeyGroup::kOutput:
      return "Run directory and logs";
    case KeyGroup::kPredict:
      return "Prediction";
    case KeyGroup::kBenchmark:
      return "Inference benchmark";
    case KeyGroup::kExport:
      return "Export (ONNX, Triton)";
    case KeyGroup::kInt8:
      return "int8";
    case KeyGroup::kCalibration:
      return "int8 calibration";
    case KeyGroup::kQat:
      return "Quantization-aware training";
  }
  return "Configuration";
}

const std::vector<ConfigKeyInfo>& config_keys() {
  static const std::vector<ConfigKeyInfo> infos = [] {
    std::vector<ConfigKeyInfo> out;
    for (const auto& k : keys()) out.push_back(k.info);
    return out;
  }();
  return infos;
}

RunConfig default_config(const std::string& arch) {
  const ModelEntry& entry = find_model(arch);
  RunConfig c;
  c.model.arch = arch;
  for (const auto& [key, value] : entry.recipe.values)
    set_config_value(c, key, value, "the " + entry.recipe.name + " recipe of " + arch);
  return c;
}

void set_config_value(RunConfig& config, const std::string& key, const std::string& value,
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
  static const std::vector<std::string> keys = {"model_dir", "predict_output", "data_idx_dir", "onnx_output",
                                                "triton_repository"};
  return keys;
}

RunConfig resolve_config(const std::string& recipe_path,
                         const std::vector<std::pair<std::string, std::string>>& flags, RecipeSource source) {
  std::vector<std::pair<std::string, std::string>> recipe;
  if (!recipe_path.empty()) recipe = read_recipe_file(recipe_path);
  if (source == RecipeSource::kModelDirConfig) {
    std::erase_if(recipe, [](const auto& kv) {
      const auto& keys = output_path_keys();
      return std::find(keys.begin(), keys.end(), kv.first) != keys.end();
    });
  }
  RunConfig arch_probe;
  std::string arch = "resnet50";
  for (const auto& [k, v] : recipe) {
    if (k == "arch")
      set_config_value(arch_probe, k, v, "recipe '" + recipe_path + "'"), arch = arch_probe.model.arch;
  }
  for (const auto& [k, v] : flags) {
    if (k == "arch") set_config_value(arch_probe, k, v, "flag --arch"), arch = arch_probe.model.arch;
  }
  RunConfig config = default_config(arch);
  for (const auto& [k, v] : recipe) set_config_value(config, k, v, "recipe '" + recipe_path + "'");
  for (const auto& [k, v] : flags) set_config_value(config, k, v, "flag --" + k);
  // Unless a recipe or flag says otherwise, the data says how many classes there are.
  auto sets = [](const auto& pairs, const std::string& key) {
    return std::any_of(pairs.begin(), pairs.end(), [&](const auto& kv) { return kv.first == key; });
  };
  if (!sets(recipe, "num_classes") && !sets(flags, "num_classes")) {
    const std::vector<std::string> classes = data_class_names(config.data.data_dir);
    if (!classes.empty()) config.model.num_classes = static_cast<int64_t>(classes.size());
  }
  check_config(config);
  return config;
}

ModelOverrides model_overrides(const RunConfig& c) {
  ModelOverrides o;
  o.num_classes = c.model.num_classes;
  o.dropout = c.model.dropout;
  o.stochastic_depth = c.model.stochastic_depth;
  // One of the two keys alone: the other is the recipe's (the model is built with both made explicit,
  // model_setup.h's with_resolved_batch_norm).
  if (c.model.bn_eps || c.model.bn_momentum) {
    const BatchNormSettings recipe = find_model(c.model.arch).recipe_bn;
    o.batch_norm =
        BatchNormSettings{c.model.bn_eps.value_or(recipe.eps), c.model.bn_momentum.value_or(recipe.momentum)};
  }
  o.se_width = c.model.se_width;
  o.padding = c.model.padding;
  o.zero_init_residual = c.init.zero_init_residual;
  o.init_mode = c.init.weight_init;
  return o;
}

void check_config(const RunConfig& c) {
  // The architecture's own limits, as the registry checks them when it builds the model.
  try {
    check_model_overrides(find_model(c.model.arch), model_overrides(c));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("configuration: ") + e.what());
  }
}

nlohmann::json config_to_json(const RunConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : keys()) j[k.info.name] = k.get(config);
  return j;
}

std::string config_to_yaml(const RunConfig& config) {
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
