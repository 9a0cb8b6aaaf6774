// Loss scaling for fp16 mixed precision, built on ATen's AMP kernels: gradients are unscaled and checked for
// inf/NaN in one fused pass; a step with non-finite gradients is skipped and counted, and the dynamic scale
// backs off (x backoff) on overflow and grows (x growth) after `growth_interval` finite steps.
#pragma once
#include <torch/types.h>

#include <vector>

namespace convnets {

struct GradScalerOptions {
  double init_scale = 32768.0;  // Keras mixed_float16 default 2^15 (the PyTorch recipe uses 128)
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool dynamic = true;  // false: a static scale (overflow steps are still skipped, never applied)
};

class GradScaler {
 public:
  explicit GradScaler(const GradScalerOptions& options = {});

  torch::Tensor scale(const torch::Tensor& loss);
  // Divides the gradients of `params` by the scale in place; returns false when any is inf/NaN (skip the
  // step).
  bool unscale(const std::vector<torch::Tensor>& params);
  // Adjusts the scale after a step (dynamic mode); call once per optimizer step, after unscale().
  void update();

  double current_scale() const { return scale_.item<double>(); }
  int64_t skipped_steps() const { return skipped_; }
  // For checkpoints: scale, growth tracker, skipped count.
  std::vector<torch::Tensor> state() const;
  void load_state(const std::vector<torch::Tensor>& state);

 private:
  GradScalerOptions options_;
  torch::Tensor scale_, growth_tracker_, found_inf_;
  int64_t skipped_ = 0;
};

}  // namespace convnets
