#include "run/run_device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/cuda.h>

#include <stdexcept>

namespace convnets {

std::string RunDevice::describe() const {
  std::string s = device.str();
  if (autocast) s += *autocast == torch::kBFloat16 ? ", autocast bf16" : ", autocast fp16 + loss scaling";
  return s;
}

void RunDevice::synchronize() const {
  if (device.is_cuda()) torch::cuda::synchronize();
}

RunDevice setup_device(const PrecisionConfig& p, const CpuConfig& cpu, int local_rank) {
  RunDevice d;
  // One OpenMP pool serves LibTorch and the oneDNN plan (docs/architecture.md): this sets both.
  if (cpu.cpu_threads > 0) at::set_num_threads(static_cast<int>(cpu.cpu_threads));
  const bool cuda = torch::cuda::is_available();
  if (p.device == DeviceKind::kCuda && !cuda)
    throw std::runtime_error("device = cuda, but no CUDA device is available");
  const int gpu = p.cuda_device >= 0 ? static_cast<int>(p.cuda_device) : local_rank;
  const bool use_cuda = p.device != DeviceKind::kCpu && cuda;
  if (use_cuda) {
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (p.cuda_device >= count) {
      throw std::runtime_error("cuda_device " + std::to_string(p.cuda_device) + ": this node has " +
                               std::to_string(count) + " GPU(s)");
    }
    if (gpu >= count) {
      throw std::runtime_error("local rank " + std::to_string(local_rank) + " has no GPU: this node has " +
                               std::to_string(count) +
                               " (launch one process per GPU, or share one with --cuda_device and the gloo "
                               "backend)");
    }
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(gpu));
  }
  d.device =
      use_cuda ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu)) : torch::Device(torch::kCPU);
  if (p.amp) {
    if (d.device.is_cuda() && p.amp_dtype == AmpDtype::kFp16) {
      d.autocast = torch::kHalf;
      d.loss_scaling = true;
    } else {
      d.autocast = torch::kBFloat16;  // CPU autocast is bf16 only
    }
  }
  if (d.device.is_cuda()) {
    at::globalContext().setAllowTF32CuBLAS(p.tf32);
    at::globalContext().setAllowTF32CuDNN(p.tf32);
    at::globalContext().setBenchmarkCuDNN(p.cudnn_benchmark);
  }
  return d;
}

}  // namespace convnets
