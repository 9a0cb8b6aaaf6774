// The device and precision of a run (--device, --cuda_device, --amp, --amp_dtype) and the process-wide CUDA
// knobs that go with them (TF32, cuDNN benchmark).
#pragma once
#include <torch/types.h>

#include <optional>
#include <string>

#include "run/config.h"

namespace convnets {

struct RunDevice {
  torch::Device device = torch::kCPU;
  std::optional<torch::ScalarType> autocast = std::nullopt;  // --amp: bf16 (or fp16 on CUDA)
  bool loss_scaling = false;                                 // fp16 autocast needs a GradScaler
  std::string describe() const;
  // Waits for the device's queued work (timings); a no-op on the CPU.
  void synchronize() const;
};

// Throws when CUDA is asked for and absent. `local_rank`: which GPU of this node (data-parallel launches);
// it becomes the current CUDA device. `cpu.cpu_threads` sets the CPU's thread pool.
RunDevice setup_device(const PrecisionConfig& precision, const CpuConfig& cpu, int local_rank = 0);

}  // namespace convnets
