// Calibration runs for int8 (docs/int8.md, "Calibration"): real images of a data_dir split through the
// inference form of one or more sets of weights (`convnets quantize`, and `train --qat` where it calibrates
// first), or synthetic images where only the timing matters (random weights).
#pragma once
#include <string>
#include <vector>

#include "models/quantization.h"
#include "run/config.h"
#include "run/run_device.h"
#include "util/console.h"

namespace convnets {

// The inference form of `model` with its weights on the device.
InferenceGraph graph_on_device(const ConvNetImpl& model, const std::string& arch, const RunDevice& device);

struct CalibrationSet {
  std::string weights;  // which weights: "raw", "ema", a file name
  InferenceGraph graph;
};

// The first --calibration_images images of --calibration_split (eval transform: `data_config`'s sizes and
// crops) through every set, with a progress line; the file's sets in the order given. `who` names the mode
// in messages. Errors: no split, fewer readable images than asked.
QuantizationFile calibrate_on_split(const RunConfig& config, const RunConfig& data_config,
                                    const std::vector<CalibrationSet>& sets, const RunDevice& device,
                                    const std::string& who, Console& console);

// Ranges from `images` synthetic images (max |x|) for one set of weights: enough to time the int8 form on
// random weights; its answers mean nothing (say so).
QuantizationFile calibrate_on_synthetic(const RunConfig& config, const CalibrationSet& set,
                                        const RunDevice& device, int64_t images);

}  // namespace convnets
