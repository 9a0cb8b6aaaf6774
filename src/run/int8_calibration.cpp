#include "run/int8_calibration.h"

#include <torch/utils.h>

#include "data/loader.h"
#include "run/data_setup.h"
#include "util/progress_line.h"

namespace convnets {

InferenceGraph graph_on_device(const ConvNetImpl& model, const std::string& arch, const RunDevice& device) {
  InferenceGraph g = inference_graph(model, arch);
  for (auto& op : g.ops) {
    if (op.weight.defined()) op.weight = op.weight.to(device.device);
    if (op.bias.defined()) op.bias = op.bias.to(device.device);
  }
  return g;
}

QuantizationFile calibrate_on_split(const RunConfig& config, const RunConfig& data_config,
                                    const std::vector<CalibrationSet>& sets, const RunDevice& device,
                                    const std::string& who, Console& console) {
  const CalibrationConfig& calibration = config.calibration;
  if (config.data.data_dir.empty())
    throw std::invalid_argument(
        who + " needs --data_dir: real images to calibrate on (--calibration_images " + "of them)");
  const bool train_split = calibration.calibration_split == CalibrationSplit::kTrain;
  const std::string split_name =
      std::string(train_split ? "train" : "eval") + " split of '" + config.data.data_dir + "'";
  auto split = open_split(config, train_split, console);
  if (!split) throw std::invalid_argument(who + ": there is no " + split_name + " (see --calibration_split)");
  const int64_t wanted = calibration.calibration_images;
  if (split->size() < wanted)
    throw std::invalid_argument(who + ": the " + split_name + " has " + std::to_string(split->size()) +
                                " records, fewer than --calibration_images " + std::to_string(wanted));
  const ResolvedData data = resolve_data(data_config);
  std::vector<Int8Calibrator> calibrators;
  std::string names;
  for (const CalibrationSet& s : sets) {
    calibrators.emplace_back(s.graph);
    names += (names.empty() ? "" : ", ") + s.weights;
  }

  LoaderOptions options = eval_loader_options(data_config);
  options.batch_size = std::min(options.batch_size, wanted);
  Loader loader(std::move(split), options);
  loader.start_epoch(0);
  console.info(who + ": calibrating (" + names + " weights) on " + std::to_string(wanted) +
               " images of the " + split_name + " at " + std::to_string(data.eval_size) + " px (" +
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
    for (auto& calibrator : calibrators) calibrator.observe(x);
    seen += images.size(0);
    progress.update(seen, "");
  }
  progress.finish();
  if (seen < wanted)
    throw std::runtime_error(who + ": only " + std::to_string(seen) + " of the " + split_name +
                             "'s records could be read (" + std::to_string(loader.skipped_records()) +
                             " bad ones skipped), fewer than --calibration_images " + std::to_string(wanted));

  QuantizationFile file;
  file.arch = config.model.arch;
  file.num_classes = config.model.num_classes;
  file.method = calibration.calibration_method;
  file.percentile = calibration.calibration_percentile;
  file.images = seen;
  file.image_size = data.eval_size;
  for (size_t i = 0; i < sets.size(); ++i) {
    std::vector<std::string> all_zero;
    file.sets.push_back(calibrators[i].result(sets[i].weights, calibration.calibration_method,
                                              calibration.calibration_percentile, &all_zero));
    for (const std::string& name : all_zero)
      console.warning(who + ": '" + name + "' (" + sets[i].weights +
                      " weights) was 0 on every calibration image; its range is set to 1");
  }
  return file;
}

QuantizationFile calibrate_on_synthetic(const RunConfig& config, const CalibrationSet& set,
                                        const RunDevice& device, int64_t images) {
  const ResolvedData data = resolve_data(config);
  Int8Calibrator calibrator(set.graph);
  SyntheticLoader synthetic(images, static_cast<int>(data.eval_size), config.model.num_classes,
                            static_cast<uint64_t>(config.iterations.seed));
  {
    torch::NoGradGuard no_grad;
    calibrator.observe(normalize_images(synthetic.next(0, 0).images.to(device.device), data.mean, data.std)
                           .to(torch::kFloat));
  }
  QuantizationFile file;
  file.arch = config.model.arch;
  file.num_classes = config.model.num_classes;
  file.method = CalibrationMethod::kMax;
  file.images = images;
  file.image_size = data.eval_size;
  file.sets.push_back(calibrator.result(set.weights, CalibrationMethod::kMax, 100));
  return file;
}

}  // namespace convnets
