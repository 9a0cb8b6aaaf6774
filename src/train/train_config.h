// The resolved configuration of a run. Precedence: the architecture's built-in recipe defaults < a YAML
// recipe file < command-line flags. Every key has one name, used by the YAML files, the flags
// (--<key>) and the config.yaml written beside the checkpoints.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace convnets {

struct TrainConfig {
  // Model.
  std::string arch = "resnet50";
  int64_t num_classes = 1000;
  double dropout = -1;           // < 0: the architecture's default
  double stochastic_depth = -1;  // < 0: the architecture's default (EfficientNet 0.2)
  bool zero_init_residual = false;
  std::string weight_init = "fan_in";  // ResNet kernels: fan_in | fan_out
  std::string finetune_from;           // weights only (torchvision / timm / ours), mismatched head skipped
  // BatchNorm convention; 0: automatic (the weights' own when they carry one or come from torchvision / timm,
  // else the recipe's: EfficientNet 1e-3 / 0.01, ResNet 1e-5 / 0.1). See resolve_batch_norm().
  double bn_eps = 0;
  double bn_momentum = 0;

  // Data.
  std::string
      data_dir;  // TFRecords <dir>/train-*, <dir>/validation-*; or image folders <dir>/train, <dir>/val
  std::string data_idx_dir;
  std::string class_names;  // file with one name per line; default <data_dir>/classes.txt, ImageNet's
  int64_t image_size = 0;   // train resolution; 0: the architecture's
  int64_t eval_image_size = 0;
  double eval_crop_pct = 0;                     // EfficientNet-style centre fraction; 0: the architecture's
  std::string interpolation;                    // bilinear | bicubic; empty: the architecture's
  std::string crop_sampler = "distorted_bbox";  // distorted_bbox (TF) | resized_crop (torchvision)
  double crop_min_area = 0;  // smallest crop area fraction; 0: the sampler's (0.05 TF, 0.08 torchvision)
  std::string augmentation = "none";  // none | autoaugment | randaugment
  int64_t randaug_layers = 2;
  double randaug_magnitude = 10;
  int64_t workers = 4;
  int64_t prefetch = 2;
  bool strict_data = false;
  int64_t max_image_pixels = 178956970;
  int64_t max_nonfinite_steps = 5;  // decompression-bomb limit of every image decode (PIL's)

  // Iterations.
  int64_t batch_size = 256;     // per process, per micro-batch
  int64_t eval_batch_size = 0;  // 0: batch_size
  int64_t num_iter = 90;
  std::string iter_unit = "epoch";  // epoch | batch (optimizer updates when training)
  int64_t grad_accum_steps = 1;
  int64_t warmup_steps = 50;  // benchmark steps left out of the statistics
  int64_t display_every = 10;
  int64_t seed = 1;

  // Optimisation.
  std::string optimizer = "momentum";  // momentum | rmsprop | adamw
  double lr_init = 0.256;              // per lr_reference_batch images (linear scaling)
  int64_t lr_reference_batch = 256;
  std::string lr_schedule = "cosine";  // cosine | step | exponential | constant
  std::string lr_clock = "global";     // global (RN50: decay sees step 0..) | after_warmup (EfficientNet)
  double lr_warmup_epochs = 8;
  std::vector<double> lr_step_epochs{30, 60, 80, 90};
  double lr_step_factor = 0.1;
  double lr_decay_rate = 0.97;
  double lr_decay_epochs = 2.4;
  double momentum = 0.875;
  bool nesterov = false;
  double rmsprop_rho = 0.9;
  double opt_epsilon = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double weight_decay = 3.0517578125e-05;   // PyTorch convention: gradient += weight_decay * w
  std::string weight_decay_exclude = "bn";  // bn | bn_and_depthwise
  double label_smoothing = 0.1;
  double mixup_alpha = 0, cutmix_alpha = 0;
  bool mix_per_example = true;
  std::string mix_partner = "reverse";  // reverse (TF recipes) | permute (PyTorch recipe)
  bool mix_symmetric_max = false;       // mixup lambda = max(lambda, 1 - lambda) (EfficientNet TF2)
  double ema_decay = 0;                 // 0: no EMA
  double grad_clip_norm = 0;

  // Progressive training (EfficientNet TF2): n_stages > 1 grows size, RandAugment magnitude and mixing.
  int64_t n_stages = 1;
  int64_t base_image_size = 128;
  double base_mixup = 0, base_cutmix = 0, base_randaug_magnitude = 5;

  // Precision and device.
  std::string device = "auto";  // auto | cpu | cuda
  int64_t cuda_device = -1;     // which GPU; -1: LOCAL_RANK (one process per GPU)
  bool amp = false;
  std::string amp_dtype = "bf16";  // bf16 | fp16 (fp16 uses loss scaling)
  double static_loss_scale = 0;    // 0: dynamic loss scaling (fp16)
  bool tf32 = true;
  bool channels_last = true;
  bool cudnn_benchmark = true;

  // Data parallel (launch with torchrun / srun / mpirun; one process per GPU).
  std::string dist_backend = "auto";      // auto (NCCL on CUDA, Gloo on CPU) | nccl | gloo
  int64_t dist_timeout = 300;             // seconds a collective may wait before the job fails
  std::string master_addr;                // empty: from the launcher's environment
  int64_t master_port = 0;                // 0: MASTER_PORT, else 29500
  double bucket_size_mb = 25;             // gradient all-reduce bucket
  std::string grad_compression = "none";  // none | fp16 | bf16: dtype gradients travel in
  bool sync_bn = false;  // BatchNorm statistics over the global batch (small per-GPU batches)

  // Checkpoints and logs.
  std::string model_dir;
  int64_t save_checkpoint_freq = 1;    // epochs
  int64_t checkpoint_every_steps = 0;  // also every N optimizer updates (0: off)
  int64_t keep_checkpoints = 5;
  int64_t epochs_between_eval = 1;
  std::string weights;  // eval / predict / inference_benchmark: a checkpoint or state dict file
  std::string log_filename = "log.json";
  bool tensorboard = false;

  // Predict and inference benchmark.
  std::string to_predict;      // an image file or a directory of images
  std::string predict_output;  // also write the predictions here as JSON (full-precision probabilities)
  int64_t topk = 5;
  std::vector<double> batch_sizes;  // inference_benchmark sweep; empty: batch_size
};

struct ConfigKeyInfo {
  std::string name, type, help;
  bool is_bool = false;
};
const std::vector<ConfigKeyInfo>& config_keys();

// Built-in defaults: the recipe of `arch`'s family (recipe-spec §1.8 ResNet-50 TF1, §2.8 EfficientNet TF2).
TrainConfig default_config(const std::string& arch);
// Sets one key from text ("0.1", "true", "30,60,80"); throws std::invalid_argument naming the key, the
// value and what is expected. `where` names the source (a file or "flag").
void set_config_value(TrainConfig& config, const std::string& key, const std::string& value,
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
TrainConfig resolve_config(const std::string& recipe_path,
                           const std::vector<std::pair<std::string, std::string>>& flags,
                           RecipeSource source = RecipeSource::kUser);
void check_config(const TrainConfig& config);

nlohmann::json config_to_json(const TrainConfig& config);
std::string config_to_yaml(const TrainConfig& config);  // reads back with read_recipe_file

}  // namespace convnets
