// Per-tensor activation ranges for symmetric int8 (docs/int8.md): a histogram of |x| gathered over the
// calibration batches, and the range (amax) each calibration method takes from it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "models/calibration_method.h"

namespace convnets {

// A histogram of |x| with bins of equal width, the width fixed by the first batch with a non-zero value
// (its max / kBins) and bins added as larger values come, as NVIDIA's pytorch-quantization does; over
// kMaxBins bins, neighbours merge in pairs (the width doubles), so memory stays bounded.
class AbsHistogram {
 public:
  static constexpr int64_t kBins = 2048;
  static constexpr int64_t kMaxBins = 1 << 16;

  void add(const torch::Tensor& x);  // any float tensor, any device
  // max |x| seen; 0 when every value was 0 (or nothing was added).
  double max() const { return max_; }
  double bin_width() const { return width_; }
  const std::vector<double>& counts() const { return counts_; }
  int64_t values() const { return values_; }

 private:
  std::vector<double> counts_;
  double width_ = 0, max_ = 0;
  int64_t values_ = 0, zeros_before_width_ = 0;
};

// The range of a value from its histogram. `percentile` in (0, 100] (kPercentile: the lower edge of the bin
// where the cumulative count reaches it, as NVIDIA's calibrator; at least one bin); kEntropy searches
// clipping points from bin 128 to the last with 128 quantization levels (256 for `is_unsigned`: a u8 value).
// 0 when every value was 0.
double calibrated_amax(const AbsHistogram& histogram, CalibrationMethod method, double percentile,
                       bool is_unsigned);

}  // namespace convnets
