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
  w.model = build_model(config, device.device);
  const std::string path = weights_path(config);
  if (path.empty()) {
    if (!allow_random) {
      throw std::invalid_argument("no weights: give --weights FILE, or a --model_dir holding checkpoints");
    }
    console.warning("no --weights and no checkpoint in model_dir; using the random initialisation");
    w.source = "random init";
    w.batch_norm = resolve_batch_norm(config.model, WeightsOrigin::kNone);
    w.model->eval();
    return w;
  }
  if (!fs::is_regular_file(path)) throw std::invalid_argument("weights '" + path + "' does not exist");
  const std::string bytes = read_file(path);
  // Whose convention the weights follow: ours when convnets wrote them (metadata, a training checkpoint, or
  // the file the run in model_dir left), else torchvision's / timm's.
  WeightsOrigin origin = WeightsOrigin::kConvnets;
  WeightsMetadata metadata;
  if (const std::optional<TensorSections> sections = as_checkpoint(bytes, path)) {
    metadata = torch_file_metadata(bytes, path);
    load_state_dict(*w.model, normalize_keys(section(*sections, "state_dict")));
    if (const NamedTensors* ema = find_section(*sections, "ema_state_dict")) {
      w.ema_model = build_model(config, device.device);
      load_state_dict(*w.ema_model, *ema);
    }
  } else {
    WeightsFile file = weights_file_from_bytes(bytes, path);
    metadata = std::move(file.metadata);
    // A file named with --weights and without our metadata was written elsewhere; the file a run left in
    // model_dir is ours (runs before the metadata existed wrote none).
    if (!config.weights.weights.empty()) origin = weights_origin(file.tensors, metadata);
    try {
      load_state_dict(*w.model, normalize_keys(file.tensors), /*strict=*/true);
    } catch (const StateDictMismatch& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
  if (const std::string bad = non_finite_summary(state_dict(*w.model)); !bad.empty())
    console.warning("weights '" + path + "': " + bad + "; its predictions are meaningless");
  w.batch_norm = resolve_batch_norm(config.model, origin, metadata);
  apply_batch_norm(*w.model, w.batch_norm);
  w.model->eval();
  if (w.ema_model) {
    apply_batch_norm(*w.ema_model, w.batch_norm);
    w.ema_model->eval();
  }
  w.source = path;
  return w;
}

}  // namespace convnets
