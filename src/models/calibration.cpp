#include "models/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace convnets {

void AbsHistogram::add(const torch::Tensor& x) {
  const torch::Tensor a = x.detach().abs().to(torch::kFloat).flatten();
  const int64_t n = a.numel();
  if (n == 0) return;
  const double batch_max = a.max().item<double>();
  if (!std::isfinite(batch_max))
    throw std::runtime_error("calibration: a value holds NaN or infinite numbers (the model's weights?)");
  values_ += n;
  max_ = std::max(max_, batch_max);
  if (width_ == 0) {
    if (batch_max == 0) {
      zeros_before_width_ += n;
      return;
    }
    width_ = batch_max / kBins;
    counts_.assign(kBins, 0);
    counts_[0] += static_cast<double>(zeros_before_width_);
  }
  int64_t bins = static_cast<int64_t>(counts_.size());
  const int64_t needed = static_cast<int64_t>(std::ceil(batch_max / width_));
  if (needed > bins) {
    bins = needed;
    while (bins > kMaxBins) {  // merge neighbours: the width doubles
      std::vector<double> merged((counts_.size() + 1) / 2, 0.0);
      for (size_t i = 0; i < counts_.size(); ++i) merged[i / 2] += counts_[i];
      counts_ = std::move(merged);
      width_ *= 2;
      bins = static_cast<int64_t>(std::ceil(batch_max / width_));
    }
    counts_.resize(std::max<int64_t>(bins, static_cast<int64_t>(counts_.size())), 0.0);
    bins = static_cast<int64_t>(counts_.size());
  }
  // histc puts a value equal to the upper limit into the last bin.
  const torch::Tensor h =
      torch::histc(a.cpu(), bins, 0, static_cast<double>(width_ * static_cast<double>(bins)))
          .to(torch::kDouble);
  const double* p = h.data_ptr<double>();
  for (int64_t i = 0; i < bins; ++i) counts_[i] += p[i];
}

namespace {

// The lower edge of the bin where the cumulative count reaches the percentile, as NVIDIA's calibrator takes
// it (at least one bin: a value that is mostly zeros keeps a range).
double percentile_amax(const std::vector<double>& counts, double width, double percentile) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  const double target = total * percentile / 100.0;
  double cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    if (cumulative >= target) return width * static_cast<double>(std::max<size_t>(i, 1));
  }
  return width * static_cast<double>(counts.size());
}

// The clipping bin count i (amax = i * width) whose distribution, quantized to `levels` levels, has the
// smallest KL divergence from the original (outliers clipped into the last kept bin). Bin 0 takes bin 1's
// count first, so that the many exact zeros of a ReLU output do not decide the range.
double entropy_amax(std::vector<double> bins, double width, int64_t levels) {
  const int64_t n = static_cast<int64_t>(bins.size());
  const int64_t start = std::min<int64_t>(128, n);
  if (n > 1) bins[0] = bins[1];
  std::vector<double> tail(n + 1, 0.0);  // tail[i] = sum of bins[i..n)
  for (int64_t i = n - 1; i >= 0; --i) tail[i] = tail[i + 1] + bins[i];
  double best = std::numeric_limits<double>::infinity();
  int64_t best_i = n;
  const int64_t stride =
      std::max<int64_t>(1, n / AbsHistogram::kBins);  // a grown histogram: ~2048 candidates
  std::vector<double> p, q, chunk_sum(levels), chunk_nonzero(levels);
  for (int64_t i = start; i <= n; i += stride) {
    p.assign(bins.begin(), bins.begin() + i);
    p[i - 1] += tail[i];
    std::fill(chunk_sum.begin(), chunk_sum.end(), 0.0);
    std::fill(chunk_nonzero.begin(), chunk_nonzero.end(), 0.0);
    for (int64_t b = 0; b < i; ++b) {
      if (bins[b] == 0) continue;
      const int64_t c = b * levels / i;
      chunk_sum[c] += bins[b];
      chunk_nonzero[c] += 1;
    }
    q.assign(i, 0.0);
    double q_total = 0, p_total = 0;
    for (int64_t b = 0; b < i; ++b) {
      if (bins[b] == 0) continue;
      const int64_t c = b * levels / i;
      q[b] = chunk_sum[c] / chunk_nonzero[c];
      q_total += q[b];
    }
    for (int64_t b = 0; b < i; ++b) p_total += p[b];
    if (q_total == 0 || p_total == 0) continue;
    double divergence = 0;
    for (int64_t b = 0; b < i && std::isfinite(divergence); ++b) {
      if (p[b] == 0) continue;
      const double pb = p[b] / p_total, qb = q[b] / q_total;
      divergence = qb == 0 ? std::numeric_limits<double>::infinity() : divergence + pb * std::log(pb / qb);
    }
    if (divergence <= best) {  // ties: the larger range
      best = divergence;
      best_i = i;
    }
  }
  return width * static_cast<double>(best_i);
}

}  // namespace

double calibrated_amax(const AbsHistogram& histogram, CalibrationMethod method, double percentile,
                       bool is_unsigned) {
  if (histogram.max() == 0) return 0;
  switch (method) {
    case CalibrationMethod::kMax:
      return histogram.max();
    case CalibrationMethod::kPercentile:
      if (!(percentile > 0 && percentile <= 100))
        throw std::invalid_argument("calibration percentile must be in (0, 100], got " +
                                    std::to_string(percentile));
      return std::min(histogram.max(),
                      percentile_amax(histogram.counts(), histogram.bin_width(), percentile));
    case CalibrationMethod::kEntropy:
      return std::min(histogram.max(),
                      entropy_amax(histogram.counts(), histogram.bin_width(), is_unsigned ? 256 : 128));
  }
  return histogram.max();
}

}  // namespace convnets
