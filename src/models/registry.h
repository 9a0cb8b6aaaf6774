// The model zoo: every architecture with its defaults (resolution, crop, interpolation, mean/std, recipe),
// the knobs it takes, and the weights layouts it reads. Each family's entries are made next to its model
// (family_*_entries below); nothing outside src/models/ needs to know which family a model is.
#pragma once
#include <array>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "models/init.h"
#include "models/layers.h"
#include "util/interpolation.h"
#include "util/state_dict.h"

namespace convnets {

// How evaluation crops (timm's crop_mode names where timm has one): kCenter resizes the shorter side to
// size / crop_pct and takes the centre size x size (timm "center", torchvision's Resize + CenterCrop);
// kCenterCrop takes the centre crop_pct of the shorter side and resizes it to size (TensorFlow's: the
// EfficientNet seeds); kSquash resizes the whole image to size x size (timm "squash").
enum class CropMode { kCenter, kCenterCrop, kSquash };
const char* crop_mode_name(CropMode mode);  // "center", "center_crop", "squash"

struct DataDefaults {
  int64_t train_size;  // random-resized-crop output
  int64_t eval_size;   // eval output
  double crop_pct;     // eval: see CropMode
  CropMode crop_mode;
  Interpolation interpolation;
  std::array<double, 3> mean;  // RGB, on the 0..1 scale
  std::array<double, 3> std;
};

// The seed recipe a model trains with by default (docs/recipes.md), in PyTorch conventions: configuration
// keys and their values, applied over RunConfig's defaults by default_config() and printed by
// `convnets models -v`. A recipe file or flags override them.
struct RecipeDefaults {
  std::string name;
  std::vector<std::pair<std::string, std::string>> values;
};

// Architecture settings a caller may override; unset fields keep the entry's defaults. Every model takes
// num_classes and batch_norm; the others are knobs that only some models take (ModelEntry::knobs).
struct ModelOverrides {
  std::optional<int64_t> num_classes = std::nullopt;
  std::optional<double> dropout = std::nullopt;
  std::optional<double> stochastic_depth = std::nullopt;
  std::optional<bool> zero_init_residual = std::nullopt;
  std::optional<FanMode> init_mode = std::nullopt;
  std::optional<BatchNormSettings> batch_norm = std::nullopt;
  std::optional<int64_t> se_width = std::nullopt;  // a fixed SE width (NVIDIA's PyTorch SE-ResNeXt: 16)
  std::optional<Padding> padding = std::nullopt;   // TensorFlow's "same" padding
};

// The knobs of ModelOverrides that only some models take, by their configuration keys.
enum class ModelKnob { kDropout, kStochasticDepth, kZeroInitResidual, kWeightInit, kSeWidth, kPadding };
const char* model_knob_key(ModelKnob knob);  // "dropout", ..., "weight_init", "se_width", "padding"

// Who wrote a state dict, which decides the BatchNorm convention (and for some layouts the padding and
// normalisation) it runs with: convnets (its metadata says), torchvision or timm (their layouts say).
enum class WeightsOrigin { kNone, kConvnets, kTorchvision, kTimm };

// A weights layout, recognised by its key names.
enum class WeightsLayout {
  kResNet,                   // conv1, layer1.0.conv1, fc: torchvision's and timm's ResNets and ResNeXts
  kTorchvisionEfficientNet,  // features.0.0, features.N.M.block..., classifier.1: torchvision V1 and V2
  kTimmEfficientNet,         // conv_stem, blocks.S.B.conv_dw (a depthwise-separable first stage): timm V1
  kTimmEfficientNetV2,       // conv_stem, blocks.0.0.conv / conv_exp (fused first stages): timm V2
  kUnknown,
};
WeightsLayout weights_layout(const NamedTensors& tensors);
const char* weights_layout_name(WeightsLayout layout);

// A layout other than the model's own that its family reads: the key renaming, who writes such files, and
// what weights in it were trained with (overrides such as timm's TF padding; timm's mean / std).
struct ForeignLayout {
  WeightsLayout layout;
  WeightsOrigin origin;
  std::function<NamedTensors(const NamedTensors&)> to_native;
  BatchNormSettings bn;
  ModelOverrides overrides;
  std::optional<std::array<double, 3>> mean = std::nullopt, std = std::nullopt;
};

struct ModelEntry {
  std::string name;
  DataDefaults data;
  RecipeDefaults recipe;
  double dropout;  // classifier dropout (0 where the family has none)
  // BatchNorm of the seed recipe (what training from scratch uses), and of the reference library's models
  // of the same name: `native_bn` for files in the model's own layout (torchvision's efficientnet_b5..b7 use
  // 1e-3 / 0.01, b0..b4 and every ResNet 1e-5 / 0.1, V2 1e-3 / 0.1), and each foreign layout's own.
  BatchNormSettings recipe_bn, native_bn;
  WeightsLayout native_layout;
  WeightsOrigin native_origin;  // who writes files in the native layout (torchvision, or timm for V2-B*)
  std::vector<ForeignLayout> foreign_layouts;
  // The classifier's module ("fc", "classifier.1"; timm's _cfg(classifier=...)): fine-tuning keeps a fresh
  // one where the class count differs.
  std::string classifier;
  // The knobs it takes. For the others, `fixed` holds what the model is (dropout 0, fan_out init, symmetric
  // padding...): asking for that is no error, asking for anything else is (check_model_overrides).
  std::set<ModelKnob> knobs;
  ModelOverrides fixed;
  std::function<ConvNetPtr(const ModelOverrides&)> create;
};

const std::vector<ModelEntry>& model_registry();
std::vector<std::string> model_names();
// Throws std::invalid_argument naming the allowed architectures when `name` is unknown.
const ModelEntry& find_model(const std::string& name);
ConvNetPtr create_model(const std::string& name, const ModelOverrides& overrides = {});
// Throws std::invalid_argument naming the knob and the models that take it when `overrides` asks `entry` for
// one it does not take (dropout on a ResNet, zero_init_residual on an EfficientNet, ...), or for an invalid
// value. create_model checks this too.
void check_model_overrides(const ModelEntry& entry, const ModelOverrides& overrides);

// A state dict made the model's own: a DataParallel / DDP "module." prefix stripped, a foreign layout the
// family reads renamed (with what it implies), or an error naming the file's layout and the ones `entry`
// takes. `metadata_origin`: kConvnets when the file carries our metadata.
struct NativeWeights {
  NamedTensors tensors;
  WeightsOrigin origin = WeightsOrigin::kConvnets;
  WeightsLayout layout = WeightsLayout::kUnknown;  // the file's own
  const ForeignLayout* foreign = nullptr;          // how it was converted, when it was
};
NativeWeights to_native_weights(const ModelEntry& entry, const NamedTensors& tensors, bool ours,
                                const std::string& context);
// to_native_weights + load_state_dict; throws naming `path` on a mismatch.
LoadReport load_model_weights(ConvNetImpl& model, const std::string& arch, const std::string& path,
                              bool strict = true);

// The families' entries, made where their models are.
std::vector<ModelEntry> resnet_entries();
std::vector<ModelEntry> efficientnet_entries();
std::vector<ModelEntry> efficientnet_v2_entries();

}  // namespace convnets
