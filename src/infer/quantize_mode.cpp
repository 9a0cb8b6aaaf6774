// `quantize`: runs real images through a model's inference form and writes the int8 quantization of its
// weights (raw and EMA) into model_dir (models/quantization.h, docs/int8.md).
#include <filesystem>

#include "data/loader.h"
#include "infer/modes.h"
#include "infer/weights_for_inference.h"
#include "run/data_setup.h"
#include "run/run_device.h"
#include "util/progress_line.h"

namespace convnets {

namespace {

// The inference form of `model` with its weights on the device.
InferenceGraph graph_on(const ConvNetPtr& model, const std::string& arch, const RunDevice& device) {
  InferenceGraph g = inference_graph(*model, arch);
  for (auto& op : g.ops) {
    if (op.weight.defined()) op.weight = op.weight.to(device.device);
    if (op.bias.defined()) op.bias = op.bias.to(device.device);
  }
  return g;
}

}  // namespace

QuantizeResult run_quantize(const RunConfig& config, const RunContext& context) {
  Console& console = *context.console;
  const CalibrationConfig& calibration = config.calibration;
  if (config.output.model_dir.empty())
    throw std::invalid_argument("quantize needs --model_dir: it writes " +
                                std::string(kQuantizationFileName) + " there");
  if (config.data.data_dir.empty())
    throw std::invalid_argument(
        "quantize needs --data_dir: real images to calibrate on (--calibration_images "
        "of them)");
  const bool train_split = calibration.calibration_split == CalibrationSplit::kTrain;
  const std::string split_name =
      std::string(train_split ? "train" : "eval") + " split of '" + config.data.data_dir + "'";
  auto split = open_split(config, train_split, console);
  if (!split)
    throw std::invalid_argument("quantize: there is no " + split_name + " (see --calibration_split)");
  const int64_t wanted = calibration.calibration_images;
  if (split->size() < wanted)
    throw std::invalid_argument("quantize: the " + split_name + " has " + std::to_string(split->size()) +
                                " records, fewer than --calibration_images " + std::to_string(wanted));
  const RunDevice device = setup_device(config.precision, config.cpu);
  const LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false, console);
  const ResolvedData data = resolve_data(w.config);
  std::vector<std::pair<std::string, Int8Calibrator>> sets;  // (which weights, their calibrator)
  sets.emplace_back(w.ema_model ? "raw" : w.source,
                    Int8Calibrator(graph_on(w.model, config.model.arch, device)));
  if (w.ema_model) sets.emplace_back("ema", Int8Calibrator(graph_on(w.ema_model, config.model.arch, device)));

  LoaderOptions options = eval_loader_options(w.config);
  options.batch_size = std::min(options.batch_size, wanted);
  Loader loader(std::move(split), options);
  loader.start_epoch(0);
  console.info("calibrating " + w.source + (w.ema_model ? " (raw and EMA weights)" : "") + " on " +
               std::to_string(wanted) + " images of the " + split_name + " at " +
               std::to_string(data.eval_size) + " px (" +
               calibration_method_name(calibration.calibration_method) + "; " + device.describe() + ")");
  ProgressLine progress(console, "calibrating", wanted);
  int64_t seen = 0;
  torch::NoGradGuard no_grad;
  while (seen < wanted) {
    std::optional<Batch> batch = loader.next();
    if (!batch) break;
    torch::Tensor images = batch->images;
    if (images.size(0) > wanted - seen) images = images.narrow(0, 0, wanted - seen);
    const torch::Tensor x = normalize_images(images.to(device.device), data.mean, data.std);
    for (auto& [weights, calibrator] : sets) calibrator.observe(x);
    seen += images.size(0);
    progress.update(seen, "");
  }
  progress.finish();
  if (seen < wanted)
    throw std::runtime_error("quantize: only " + std::to_string(seen) + " of the " + split_name +
                             "'s records could be read (" + std::to_string(loader.skipped_records()) +
                             " bad ones skipped), fewer than --calibration_images " + std::to_string(wanted));

  QuantizeResult result;
  QuantizationFile& file = result.file;
  file.arch = config.model.arch;
  file.num_classes = config.model.num_classes;
  file.method = calibration.calibration_method;
  file.percentile = calibration.calibration_percentile;
  file.images = seen;
  file.image_size = data.eval_size;
  for (const auto& [weights, calibrator] : sets) {
    std::vector<std::string> all_zero;
    file.sets.push_back(calibrator.result(weights, calibration.calibration_method,
                                          calibration.calibration_percentile, &all_zero));
    for (const std::string& name : all_zero)
      console.warning("quantize: '" + name + "' (" + weights +
                      " weights) was 0 on every calibration image; " + "its range is set to 1");
  }
  result.path = (std::filesystem::path(config.output.model_dir) / kQuantizationFileName).string();
  std::filesystem::create_directories(config.output.model_dir);
  save_quantization(result.path, file);
  const Int8Calibration& first = file.sets.front();
  console.info("wrote " + result.path + ": " + std::to_string(first.amax.size()) + " int8 values and " +
               std::to_string(first.weight_scales.size()) + " weight tensors per set of weights (" +
               std::to_string(file.sets.size()) + "), calibrated on " + std::to_string(seen) + " images");
  return result;
}

}  // namespace convnets
