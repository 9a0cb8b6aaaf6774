// How `convnets quantize` takes an activation's range from what it saw (models/calibration.h); here without
// LibTorch, for run/config.h.
#pragma once

namespace convnets {

enum class CalibrationMethod {
  kPercentile,  // the bin where the given percentile of |x| falls (NVIDIA's choice: 99.99)
  kEntropy,     // the clipping point whose quantized histogram is closest to the original (KL divergence)
  kMax,         // max |x| seen
};

}  // namespace convnets
