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
