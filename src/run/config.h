// The resolved configuration of a run, shared by every mode. Precedence: the architecture's recipe (its
// registry entry) < a YAML recipe file < command-line flags. Every key has one flat name, used by the YAML
// files, the flags (--<key>) and the config.yaml written beside the checkpoints; in code the keys live in
// typed groups (one struct per group, enums for every choice, parsed once in config.cpp's key table). Each
// mode accepts the groups it uses (app/cmd_run.cpp), so its --help lists only those. docs/architecture.md
// shows how to add a key.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cpu/cpu_options.h"
#include "data/resample.h"
#include "data/transforms.h"
#include "dist/grad_reducer.h"
#include "dist/process_group.h"
#include "models/calibration_method.h"
#include "models/init.h"
#include "models/registry.h"

namespace convnets {

// The key groups, in --help order.
enum class KeyGroup {
  kModel,
  kInit,
  kWeights,
  kData,
  kTrainInput,
  kEvalInput,
  kIterations,
  kOptimisation,
  kSchedule,
  kMixing,
  kProgressive,
  kPrecision,
  kCpu,
  kParallel,
  kCheckpoints,
  kOutput,
  kPredict,
  kBenchmark,
  kExport,
  kInt8,
  kCalibration,
  kQat,
};
const char* key_group_title(KeyGroup group);

// The model's knobs: unset (std::nullopt) means the architecture's own, or the weights' (model_setup.h).
struct ModelConfig {
  std::string arch = "resnet50";
  int64_t num_classes = 1000;  // unless a recipe or flag sets it: the data's class count (resolve_config)
  std::optional<double> dropout, stochastic_depth;  // EfficientNet
  // BatchNorm convention; unset: the weights' own when they carry one or come from torchvision / timm, else
  // the recipe's (EfficientNet 1e-3 / 0.01, ResNet 1e-5 / 0.1). See run/model_setup.h.
  std::optional<double> bn_eps, bn_momentum;
  std::optional<int64_t> se_width;  // SE-ResNeXt: one SE width for every stage (NVIDIA's PyTorch: 16)
  std::optional<Padding> padding;   // EfficientNet V2: symmetric or TensorFlow's "same"; unset: the weights'
};

// How a trained model starts.
struct InitConfig {
  std::string finetune_from;  // weights only (torchvision / timm / ours); a mismatched classifier is skipped
  bool zero_init_residual = false;
  FanMode weight_init = FanMode::kFanIn;  // ResNet kernels
};

// What eval / predict / inference_benchmark run: a checkpoint or weights file.
struct WeightsConfig {
  std::string weights;
};

struct DataConfig {
  std::string
      data_dir;  // TFRecords <dir>/train-*, <dir>/validation-*; or image folders <dir>/train, <dir>/val
  std::string data_idx_dir;
  std::string class_names;                     // file with one name per line; default <data_dir>/classes.txt
  std::optional<Interpolation> interpolation;  // unset: the architecture's
  int64_t workers = 4;
  int64_t prefetch = 2;
  bool strict_data = false;
  int64_t max_image_pixels = 178956970;  // decompression-bomb limit of every image decode (PIL's)
  // Normalisation (RGB, 0..1 scale); unset: the weights' (timm's tf_ V2: 0.5), else the architecture's.
  std::optional<std::array<double, 3>> mean, std;
};

struct TrainInputConfig {
  std::optional<int64_t> image_size;  // unset: the architecture's
  CropSampler crop_sampler = CropSampler::kDistortedBoundingBox;
  std::optional<double> crop_min_area;  // unset: the sampler's (0.05 TF, 0.08 torchvision)
  Augmentation augmentation = Augmentation::kNone;
  int64_t randaug_layers = 2;
  double randaug_magnitude = 10;
};

struct EvalInputConfig {
  std::optional<int64_t> eval_image_size;  // unset: the architecture's
  // The crop mode's fraction (models/registry.h CropMode); unset: the architecture's.
  std::optional<double> eval_crop_pct;
  std::optional<CropMode> eval_crop_mode;  // unset: the architecture's
  std::optional<int64_t> eval_batch_size;  // unset: batch_size
};

enum class IterUnit { kEpoch, kBatch };

struct IterationConfig {
  int64_t batch_size = 256;  // per process, per micro-batch
  int64_t num_iter = 90;
  IterUnit iter_unit = IterUnit::kEpoch;  // batch: optimizer updates when training
  int64_t warmup_steps = 50;              // benchmark steps left out of the statistics
  int64_t seed = 1;
};

enum class OptimizerKind { kMomentum, kRmsprop, kAdamw };
enum class WeightDecayExclude { kBatchNorm, kBatchNormAndDepthwise };

struct OptimConfig {
  OptimizerKind optimizer = OptimizerKind::kMomentum;
  double lr_init = 0.256;  // per lr_reference_batch images (linear scaling)
  int64_t lr_reference_batch = 256;
  int64_t grad_accum_steps = 1;
  double momentum = 0.875;
  bool nesterov = false;
  double rmsprop_rho = 0.9;
  double opt_epsilon = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 3.0517578125e-05;  // PyTorch convention: gradient += weight_decay * w
  WeightDecayExclude weight_decay_exclude = WeightDecayExclude::kBatchNorm;
  double label_smoothing = 0.1;
  double ema_decay = 0;  // 0: no EMA
  double grad_clip_norm = 0;
  int64_t max_nonfinite_steps = 5;
};

enum class LrScheduleKind { kConstant, kCosine, kStep, kExponential };
// What step the decay sees: the global step (ResNet TF1) or the step after warmup (EfficientNet TF2).
enum class LrClock { kGlobal, kAfterWarmup };

struct ScheduleConfig {
  LrScheduleKind lr_schedule = LrScheduleKind::kCosine;
  LrClock lr_clock = LrClock::kGlobal;
  double lr_warmup_epochs = 8;
  std::vector<double> lr_step_epochs{30, 60, 80, 90};
  double lr_step_factor = 0.1;
  double lr_decay_rate = 0.97;
  double lr_decay_epochs = 2.4;
};

enum class MixPartner {
  kReverse,
  kPermute
};  // the TF recipes reverse the batch, the PyTorch recipe permutes

struct MixingConfig {
  double mixup_alpha = 0, cutmix_alpha = 0;
  bool mix_per_example = true;
  MixPartner mix_partner = MixPartner::kReverse;
  bool mix_symmetric_max = false;  // mixup lambda = max(lambda, 1 - lambda) (EfficientNet TF2)
};

// Progressive training (EfficientNet TF2): n_stages > 1 grows size, RandAugment magnitude and mixing.
struct ProgressiveConfig {
  int64_t n_stages = 1;
  int64_t base_image_size = 128;
  double base_mixup = 0, base_cutmix = 0, base_randaug_magnitude = 5;
};

enum class DeviceKind { kAuto, kCpu, kCuda };
enum class AmpDtype { kBf16, kFp16 };

struct PrecisionConfig {
  DeviceKind device = DeviceKind::kAuto;
  int64_t cuda_device = -1;  // which GPU; -1: LOCAL_RANK (one process per GPU)
  bool amp = false;
  AmpDtype amp_dtype = AmpDtype::kBf16;  // fp16 uses loss scaling
  double static_loss_scale = 0;          // 0: dynamic loss scaling (fp16)
  bool tf32 = true;
  bool channels_last = true;
  bool cudnn_benchmark = true;
  // eval, predict, inference_benchmark and train_and_eval's evaluation run the inference form (BatchNorm
  // folded; on the CPU the kernels of CpuConfig); false: the eager training-form model.
  bool inference_form = true;
};

// The CPU's threads and its inference form's kernels (src/cpu/).
struct CpuConfig {
  int64_t cpu_threads = 0;  // LibTorch's and oneDNN's (one OpenMP pool); 0: OMP_NUM_THREADS or every core
  CpuInferenceKernels cpu_inference = CpuInferenceKernels::kPlan;
  // The oneDNN plan's options (cpu/cpu_options.h's PlanOptions).
  ActivationLayout cpu_activation_layout = ActivationLayout::kAuto;
  bool cpu_autotune = false;
  bool cpu_winograd = true;
  PlanOptions plan_options() const {
    return {.layout = cpu_activation_layout, .autotune = cpu_autotune, .winograd = cpu_winograd};
  }
};

// Data parallel (launch with torchrun / srun / mpirun; one process per GPU).
struct ParallelConfig {
  DistBackend dist_backend = DistBackend::kAuto;
  int64_t dist_timeout = 300;  // seconds a collective may wait before the job fails
  std::string master_addr;     // empty: from the launcher's environment
  int64_t master_port = 0;     // 0: MASTER_PORT, else 29500
  double bucket_size_mb = 25;  // gradient all-reduce bucket
  GradCompression grad_compression = GradCompression::kNone;
  bool sync_bn = false;  // BatchNorm statistics over the global batch (small per-GPU batches)
};

struct CheckpointConfig {
  int64_t save_checkpoint_freq = 1;    // epochs
  int64_t checkpoint_every_steps = 0;  // also every N optimizer updates (0: off)
  int64_t keep_checkpoints = 5;
  int64_t epochs_between_eval = 1;
};

struct OutputConfig {
  std::string model_dir;
  std::string log_filename = "log.json";
  bool tensorboard = false;
  int64_t display_every = 10;
};

enum class PredictFormat { kText, kJson, kCsv };

struct PredictConfig {
  std::string to_predict;      // an image file or a directory of images
  std::string predict_output;  // also write the predictions here as JSON (full-precision probabilities)
  int64_t topk = 5;
  PredictFormat output = PredictFormat::kText;  // what predict prints on stdout
};

struct BenchmarkConfig {
  std::vector<int64_t> batch_sizes;  // inference_benchmark sweep; empty: eval_batch_size, else batch_size
};

enum class TritonInstanceKind { kGpu, kCpu };

// `export`: the ONNX file and the Triton model repository.
struct ExportConfig {
  std::string onnx_output;                   // the .onnx file; may be empty when triton_repository is set
  std::optional<int64_t> export_image_size;  // unset: the architecture's eval size
  bool export_probabilities = false;
  int64_t export_topk = 5;
  bool export_fp16 = false;
  std::string triton_repository;  // a directory; empty: no repository
  std::string triton_model_name;  // empty: the architecture
  int64_t triton_max_batch_size = 128;
  TritonInstanceKind triton_instance_kind = TritonInstanceKind::kGpu;
  int64_t triton_instances = 1;
  bool triton_tensorrt_fp16 = false;
  int64_t triton_max_queue_delay_us = 100;
};

enum class CalibrationSplit { kTrain, kEval };

// int8 (docs/int8.md): `convnets quantize` calibrates a model_dir's weights; --int8 runs them quantized.
struct Int8Config {
  bool int8 = false;
};
struct QatConfig {
  bool qat = false;  // train / train_and_eval / training_benchmark: quantization-aware training
};
struct CalibrationConfig {
  int64_t calibration_images = 1024;
  CalibrationMethod calibration_method = CalibrationMethod::kPercentile;
  double calibration_percentile = 99.99;
  CalibrationSplit calibration_split = CalibrationSplit::kTrain;
};

struct RunConfig {
  ModelConfig model;
  InitConfig init;
  WeightsConfig weights;
  DataConfig data;
  TrainInputConfig train_input;
  EvalInputConfig eval_input;
  IterationConfig iterations;
  OptimConfig optim;
  ScheduleConfig schedule;
  MixingConfig mixing;
  ProgressiveConfig progressive;
  PrecisionConfig precision;
  CpuConfig cpu;
  ParallelConfig parallel;
  CheckpointConfig checkpoints;
  OutputConfig output;
  PredictConfig predict;
  BenchmarkConfig benchmark;
  ExportConfig exporting;
  Int8Config int8;
  CalibrationConfig calibration;
  QatConfig qat;

  int64_t eval_batch_size() const { return eval_input.eval_batch_size.value_or(iterations.batch_size); }
};

enum class KeyType { kInteger, kNumber, kBool, kText, kChoice, kNumberList, kIntegerList };

struct ConfigKeyInfo {
  std::string name, type, help;  // type: what --help shows ("integer", "a | b | c", ...)
  KeyType kind = KeyType::kText;
  KeyGroup group = KeyGroup::kModel;
  bool is_bool() const { return kind == KeyType::kBool; }
};
const std::vector<ConfigKeyInfo>& config_keys();

// The architecture's defaults: RunConfig's, then the recipe values of its registry entry
// (ModelEntry::recipe).
RunConfig default_config(const std::string& arch);
// Sets one key from text ("0.1", "true", "30,60,80", "cosine"); throws std::invalid_argument naming the key,
// the value and what is expected. `where` names the source (a file or "flag").
void set_config_value(RunConfig& config, const std::string& key, const std::string& value,
                      const std::string& where);
// The recipe file's key/value pairs in file order (sequences joined by commas); throws naming the file on
// a YAML error, a value that is a map, a key given twice (naming both lines), or a path that is not a
// regular file.
std::vector<std::pair<std::string, std::string>> read_recipe_file(const std::string& path);
// Where a recipe comes from. A model_dir's config.yaml may have been written by someone else (a run that
// was downloaded): keys naming files a run writes outside model_dir (output_path_keys) are not taken from it.
enum class RecipeSource { kUser, kModelDirConfig };
const std::vector<std::string>& output_path_keys();
// defaults(arch) < recipe < flags; `arch` comes from the flags, else the recipe, else resnet50. Validates
// the result (check_config).
RunConfig resolve_config(const std::string& recipe_path,
                         const std::vector<std::pair<std::string, std::string>>& flags,
                         RecipeSource source = RecipeSource::kUser);
// What no single key can check: the architecture's own limits (the registry's), increasing step epochs.
void check_config(const RunConfig& config);
// The model knobs of `config` as the registry takes them: built here and nowhere else.
ModelOverrides model_overrides(const RunConfig& config);

nlohmann::json config_to_json(const RunConfig& config);
std::string config_to_yaml(const RunConfig& config);  // reads back with read_recipe_file

}  // namespace convnets
