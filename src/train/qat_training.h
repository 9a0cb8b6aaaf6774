// Quantization-aware training in a training run (`--qat`, docs/int8.md, "Quantization-aware training"):
// where its fixed ranges come from, the QAT forward attached to the models it trains and evaluates, and the
// quantization file it keeps next to its checkpoints, so `--int8` runs exactly what was trained.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "models/quantization.h"
#include "run/config.h"
#include "run/run_device.h"
#include "util/console.h"
#include "util/state_dict.h"

namespace convnets {

class QatTraining {
 public:
  // The ranges, first found of: the model_dir's quantization file when a QAT wrote it (a resumed run) or when
  // it was calibrated for the weights `model` holds now; the file next to --finetune_from when calibrated for
  // them; else a calibration of these weights on --data_dir (--calibration_* flags), or on synthetic images
  // when there is no data (a training_benchmark: said so). `write_files`: the main rank of a run with a
  // model_dir, which writes a fresh calibration there at once. Then `model` trains with them.
  QatTraining(const RunConfig& config, ConvNetImpl& model, const RunDevice& device, bool write_files,
              Console& console);
  // Another model runs with the same ranges (the EMA's evaluation).
  void attach(ConvNetImpl& model) const;
  // <model_dir>/quantization.safetensors for the weights just saved: the ranges, and per set (the raw
  // weights, the EMA's when given) their weight scales and fingerprint. Written atomically.
  void save(const ConvNetImpl& model, const NamedTensors* ema_state);
  const std::map<std::string, double>& amax() const { return amax_; }

 private:
  const RunConfig& config_;
  QuantizationFile base_;  // how the ranges were calibrated (method, images, size)
  std::map<std::string, double> amax_;
  std::shared_ptr<ConvNetImpl> ema_model_;  // made on the first save with an EMA, on the CPU
};

}  // namespace convnets
