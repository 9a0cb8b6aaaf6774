#include "train/qat_training.h"

#include <filesystem>

#include "models/qat.h"
#include "run/int8_calibration.h"
#include "run/model_setup.h"
#include "train/checkpoint.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSyntheticCalibrationImages = 32;

// The set of `file` calibrated for `graph`'s weights, or nullptr.
const Int8Calibration* set_for(const QuantizationFile& file, const InferenceGraph& graph) {
  if (file.arch != graph.arch || file.num_classes != graph.num_classes) return nullptr;
  const std::string fingerprint = graph_fingerprint(graph);
  for (const Int8Calibration& c : file.sets) {
    if (c.fingerprint == fingerprint) return &c;
  }
  return nullptr;
}

Int8Calibration set_of(const ConvNetImpl& model, const std::string& arch, const std::string& weights,
                       const std::map<std::string, double>& amax) {
  return qat_calibration(inference_graph(model, arch), amax, weights);
}

}  // namespace

QatTraining::QatTraining(const RunConfig& config, ConvNetImpl& model, const RunDevice& device,
                         bool write_files, Console& console)
    : config_(config) {
  const std::string& arch = config.model.arch;
  const InferenceGraph start = inference_graph(model, arch);
  std::string source;
  const fs::path own = config.output.model_dir.empty()
                           ? fs::path()
                           : fs::path(config.output.model_dir) / kQuantizationFileName;
  if (!own.empty() && fs::exists(own)) {
    QuantizationFile file = load_quantization(own.string());
    if (file.arch != arch || file.num_classes != config.model.num_classes)
      throw std::runtime_error(own.string() + " quantizes " + file.arch + " with " +
                               std::to_string(file.num_classes) + " classes, not this " + arch + " with " +
                               std::to_string(config.model.num_classes) +
                               ": --qat trains with the ranges of its model_dir; use another model_dir");
    if (file.qat) {
      amax_ = file.sets.front().amax;
      source = "the ranges " + own.string() + " was trained with";
    } else if (const Int8Calibration* c = set_for(file, start)) {
      amax_ = c->amax;
      source = own.string() + " (calibrated for these weights: " + c->weights + ")";
    }
    if (!amax_.empty()) base_ = file;
  }
  if (amax_.empty() && !config.init.finetune_from.empty()) {
    const fs::path next_to = fs::path(config.init.finetune_from).parent_path() / kQuantizationFileName;
    if (fs::exists(next_to)) {
      QuantizationFile file = load_quantization(next_to.string());
      if (const Int8Calibration* c = set_for(file, start)) {
        amax_ = c->amax;
        base_ = file;
        source = next_to.string() + " (calibrated for --finetune_from's weights: " + c->weights + ")";
      }
    }
  }
  if (amax_.empty()) {
    const CalibrationSet set{"raw", graph_on_device(model, arch, device)};
    if (config.data.data_dir.empty()) {
      console.notice("--qat without --data_dir: ranges calibrated on " +
                     std::to_string(kSyntheticCalibrationImages) +
                     " synthetic images (max |x|); enough to time QAT, meaningless to train with");
      base_ = calibrate_on_synthetic(config, set, device, kSyntheticCalibrationImages);
      source = "synthetic calibration";
    } else {
      base_ = calibrate_on_split(config, config, {set}, device, "train --qat", console);
      source = "a calibration of the starting weights on " + std::to_string(base_.images) + " images";
    }
    amax_ = base_.sets.front().amax;
  }
  base_.qat = true;
  // Every int8 value needs its range (a file of this architecture that misses one is damaged).
  try {
    model.set_qat(std::make_shared<QatForward>(model, arch, amax_));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("--qat with the ranges of " + source + ": " + e.what());
  }
  console.info("quantization-aware training: " + std::to_string(amax_.size()) +
               " int8 values at fixed ranges from " + source + "; weights rounded per output channel");
  if (write_files && source.rfind("a calibration", 0) == 0) {
    base_.sets = {set_of(model, arch, "raw", amax_)};
    save_quantization(own.string(), base_);
  }
}

void QatTraining::attach(ConvNetImpl& model) const {
  model.set_qat(std::make_shared<QatForward>(model, config_.model.arch, amax_));
}

void QatTraining::save(const ConvNetImpl& model, const NamedTensors* ema_state) {
  QuantizationFile file = base_;
  file.sets = {set_of(model, config_.model.arch, "raw", amax_)};
  if (ema_state) {
    if (!ema_model_) {
      // Its initialisation must not draw from the run's random stream: a resumed run would draw otherwise.
      const torch::Tensor rng = cpu_rng_state();
      ema_model_ = build_model(config_, torch::kCPU);
      set_cpu_rng_state(rng);
    }
    load_state_dict(*ema_model_, *ema_state);
    file.sets.push_back(set_of(*ema_model_, config_.model.arch, "ema", amax_));
  }
  save_quantization((fs::path(config_.output.model_dir) / kQuantizationFileName).string(), file);
}

}  // namespace convnets
