// `quantize`: runs real images through a model's inference form and writes the int8 quantization of its
// weights (raw and EMA) into model_dir (models/quantization.h, docs/int8.md).
#include <filesystem>

#include "infer/modes.h"
#include "infer/weights_for_inference.h"
#include "run/int8_calibration.h"
#include "run/run_device.h"

namespace convnets {

QuantizeResult run_quantize(const RunConfig& config, const RunContext& context) {
  Console& console = *context.console;
  if (config.output.model_dir.empty())
    throw std::invalid_argument("quantize needs --model_dir: it writes " +
                                std::string(kQuantizationFileName) + " there");
  if (config.data.data_dir.empty())
    throw std::invalid_argument(
        "quantize needs --data_dir: real images to calibrate on (--calibration_images "
        "of them)");
  const RunDevice device = setup_device(config.precision, config.cpu);
  const LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false, console);
  std::vector<CalibrationSet> sets;
  sets.push_back({w.ema_model ? "raw" : w.source, graph_on_device(*w.model, config.model.arch, device)});
  if (w.ema_model) sets.push_back({"ema", graph_on_device(*w.ema_model, config.model.arch, device)});
  console.info("quantize: " + w.source + (w.ema_model ? " (raw and EMA weights)" : ""));

  QuantizeResult result;
  result.file = calibrate_on_split(config, w.config, sets, device, "quantize", console);
  QuantizationFile& file = result.file;
  result.path = (std::filesystem::path(config.output.model_dir) / kQuantizationFileName).string();
  std::filesystem::create_directories(config.output.model_dir);
  save_quantization(result.path, file);
  const Int8Calibration& first = file.sets.front();
  console.info("wrote " + result.path + ": " + std::to_string(first.amax.size()) + " int8 values and " +
               std::to_string(first.weight_scales.size()) + " weight tensors per set of weights (" +
               std::to_string(file.sets.size()) + "), calibrated on " + std::to_string(file.images) +
               " images");
  return result;
}

}  // namespace convnets
