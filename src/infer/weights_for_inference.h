// The weights eval, predict and inference_benchmark run: --weights (a training checkpoint, raw and EMA, or
// a state dict: .pt / .safetensors, ours or torchvision's / timm's), else the newest checkpoint in
// model_dir, else <model_dir>/final_weights.pt; with the BatchNorm convention they were trained with.
#pragma once
#include <string>

#include "models/layers.h"
#include "run/config.h"
#include "run/model_setup.h"
#include "run/run_device.h"
#include "util/console.h"

namespace convnets {

struct LoadedWeights {
  ConvNetPtr model;                // the raw weights, in eval mode
  ConvNetPtr ema_model;            // the EMA weights, when the checkpoint has them
  std::string source;              // the file read, or "random init"
  BatchNormConvention batch_norm;  // what the models run with (resolve_weights)
  // The run's configuration with what the weights imply (BatchNorm, a foreign layout's padding and mean /
  // std): what the reader modes normalise and evaluate with.
  RunConfig config;
};

// `allow_random`: with no weights anywhere, fall back to the random init with a warning (benchmarks).
// Warns when the weights hold NaN or infinite values.
LoadedWeights load_for_inference(const RunConfig& config, const RunDevice& device, bool allow_random,
                                 Console& console);

}  // namespace convnets
