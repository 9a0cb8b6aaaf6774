// What every mode builds from a resolved TrainConfig: the device and precision, the model, the datasets and
// their transforms, the class names.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/image_source.h"
#include "data/loader.h"
#include "dist/dist_env.h"
#include "dist/process_group.h"
#include "models/layers.h"
#include "models/registry.h"
#include "train/train_config.h"
#include "util/torch_file.h"

namespace convnets {

struct RunDevice {
  torch::Device device = torch::kCPU;
  std::optional<torch::ScalarType> autocast = std::nullopt;  // --amp: bf16 (or fp16 on CUDA)
  bool loss_scaling = false;                                 // fp16 autocast needs a GradScaler
  std::string describe() const;
};

// Resolves --device/--amp and sets the process-wide CUDA knobs (TF32, cuDNN benchmark). Throws when CUDA is
// asked for and absent.
// `local_rank`: which GPU of this node (data-parallel launches); it becomes the current CUDA device.
RunDevice setup_device(const TrainConfig& config, int local_rank = 0);

// The launcher's view of this process (torchrun / srun / mpirun variables; --master_addr / --master_port
// win).
DistEnv run_dist_env(const TrainConfig& config);
// Joins the other ranks with --dist_backend / --dist_timeout; nullptr for a single process.
std::unique_ptr<ProcessGroup> join_ranks(const TrainConfig& config, const DistEnv& env,
                                         const RunDevice& device);

// BatchNorm eps and momentum of a model, in this order: --bn_eps / --bn_momentum when set; what the weights'
// metadata records (files convnets wrote); for weights written elsewhere, the convention of the library
// whose layout they have (torchvision's per architecture, timm's; see ModelEntry); the recipe's when there
// are no weights (training from scratch).
enum class WeightsOrigin { kNone, kConvnets, kTorchvision, kTimm };
// Who wrote a state dict: convnets when it carries our metadata, else timm or torchvision by its key names.
WeightsOrigin weights_origin(const NamedTensors& tensors, const WeightsMetadata& metadata);
struct BatchNormConvention {
  double eps = 1e-5, momentum = 0.1;
  std::string source;  // "flag", "weights metadata", "torchvision's", "timm's", "recipe"
};
BatchNormConvention resolve_batch_norm(const TrainConfig& config, WeightsOrigin origin,
                                       const WeightsMetadata& metadata = {});
void apply_batch_norm(torch::nn::Module& model, const BatchNormConvention& bn);
// The metadata convnets writes beside every weights file of `config`'s model (bn_eps must be resolved).
WeightsMetadata model_metadata(const TrainConfig& config);
// `config` with bn_eps / bn_momentum made explicit for training: from finetune_from's weights when set (a
// foreign file: 1e-5 / 0.1), else the recipe's. Written to config.yaml, so later modes use the same.
TrainConfig with_resolved_batch_norm(const TrainConfig& config);

// The architecture with the config's overrides, on `device` (channels_last when asked). With
// `finetune_from` set, those weights are loaded, skipping (and reporting) keys whose shape differs.
ConvNetPtr build_model(const TrainConfig& config, const torch::Device& device, bool load_finetune = true);
void to_channels_last(torch::nn::Module& module);

// The train or eval split of --data_dir: TFRecords (<dir>/train-*, <dir>/validation-*) or image folders
// (<dir>/train, <dir>/val or <dir>/validation). nullptr when data_dir is empty (synthetic data).
std::shared_ptr<const ImageSource> open_split(const TrainConfig& config, bool train);

struct ResolvedData {
  int64_t train_size, eval_size;
  double crop_pct;
  Interpolation interpolation;
  std::array<double, 3> mean, std;
};
ResolvedData resolve_data(const TrainConfig& config);
TrainTransformOptions train_transform_options(const TrainConfig& config, int64_t size,
                                              double randaug_magnitude);
EvalTransformOptions eval_transform_options(const TrainConfig& config);
// Loader settings of the eval split (eval_batch_size, every image once) and of the train split at one
// progressive stage's image size and RandAugment magnitude.
LoaderOptions eval_loader_options(const TrainConfig& config);
LoaderOptions train_loader_options(const TrainConfig& config, int64_t image_size, double randaug_magnitude);

// --class_names, else <data_dir>/classes.txt, else <model_dir>/classes.txt, else ImageNet's when there are
// 1000 classes; empty when none is known. Throws when the file's line count differs from num_classes.
std::vector<std::string> load_class_names(const TrainConfig& config);
const std::vector<std::string>& imagenet_class_names();

// A loader batch on the device as normalised float NCHW (channels_last), and its labels.
std::pair<torch::Tensor, torch::Tensor> batch_to_device(const Batch& batch, const RunDevice& device,
                                                        const ResolvedData& data);

}  // namespace convnets
