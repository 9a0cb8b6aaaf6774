#include "infer/weights_for_inference.h"

#include <filesystem>

#include "run/checkpoint_file.h"
#include "util/file_io.h"
#include "util/state_dict.h"
#include "util/weights.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

// The file to read: --weights, else the newest checkpoint of model_dir, else its final weights.
std::string weights_path(const RunConfig& config) {
  if (!config.weights.weights.empty()) return config.weights.weights;
  const std::string& dir = config.output.model_dir;
  if (dir.empty()) return {};
  const std::vector<std::string> checkpoints = checkpoints_newest_first(dir);
  if (!checkpoints.empty()) return checkpoints.front();
  const fs::path final_weights = fs::path(dir) / "final_weights.pt";
  return fs::exists(final_weights) ? final_weights.string() : std::string();
}

// A training checkpoint's sections, or nullopt for a plain state dict (which has no "state_dict" dict of
// dicts): the container is parsed once and its shape decides.
std::optional<TensorSections> as_checkpoint(const std::string& bytes, const std::string& path) {
  if (!is_torch_zip(bytes)) return std::nullopt;
  std::optional<TensorSections> sections = torch_sections_if_checkpoint(bytes, path);
  if (!sections || !find_section(*sections, "state_dict")) return std::nullopt;
  return sections;
}

}  // namespace

LoadedWeights load_for_inference(const RunConfig& config, const RunDevice& device, bool allow_random,
                                 Console& console) {
  LoadedWeights w;
  const std::string path = weights_path(config);
  if (path.empty()) {
    if (!allow_random) {
      throw std::invalid_argument("no weights: give --weights FILE, or a --model_dir holding checkpoints");
    }
    console.warning("no --weights and no checkpoint in model_dir; using the random initialisation");
    w.source = "random init";
    w.config = with_recipe_conventions(config);
    w.batch_norm = {{*w.config.model.bn_eps, *w.config.model.bn_momentum}, "recipe"};
    w.model = build_model(w.config, device.device);
    w.model->eval();
    return w;
  }
  if (!fs::is_regular_file(path)) throw std::invalid_argument("weights '" + path + "' does not exist");
  const std::string bytes = read_file(path);
  // Whose convention the weights follow: ours when convnets wrote them (metadata, a training checkpoint, or
  // the file the run in model_dir left), else torchvision's / timm's by their layout.
  NamedTensors tensors, ema;
  WeightsMetadata metadata;
  bool ours = true;
  if (const std::optional<TensorSections> sections = as_checkpoint(bytes, path)) {
    metadata = torch_file_metadata(bytes, path);
    tensors = section(*sections, "state_dict");
    if (const NamedTensors* e = find_section(*sections, "ema_state_dict")) ema = *e;
  } else {
    WeightsFile file = weights_file_from_bytes(bytes, path);
    metadata = std::move(file.metadata);
    tensors = std::move(file.tensors);
    // A file named with --weights and without our metadata was written elsewhere; the file a run left in
    // model_dir is ours (runs before the metadata existed wrote none).
    ours = !metadata.empty() || config.weights.weights.empty();
  }
  const ResolvedWeights resolved = resolve_weights(config, tensors, metadata, ours, path);
  w.config = resolved.config;
  w.batch_norm = resolved.batch_norm;
  auto load = [&](const NamedTensors& state) {
    ConvNetPtr model = build_model(w.config, device.device);
    try {
      load_state_dict(*model, state, /*strict=*/true);
    } catch (const StateDictMismatch& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    model->eval();
    return model;
  };
  w.model = load(resolved.weights.tensors);
  if (!ema.empty())
    w.ema_model = load(to_native_weights(find_model(config.model.arch), ema, true, path).tensors);
  if (const std::string bad = non_finite_summary(state_dict(*w.model)); !bad.empty())
    console.warning("weights '" + path + "': " + bad + "; its predictions are meaningless");
  w.source = path;
  return w;
}

}  // namespace convnets
