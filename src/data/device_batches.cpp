#include "data/device_batches.h"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <stdexcept>

namespace convnets {

DeviceBatches::DeviceBatches(torch::Device device, const std::array<double, 3>& mean,
                             const std::array<double, 3>& std)
    : device_(device), mean_(mean), std_(std) {
  if (device_.is_cuda()) {
    if (!device_.has_index()) device_ = torch::Device(torch::kCUDA, 0);
    // Device-generic stream API (no CUDA headers needed): a stream from the CUDA pool of this device.
    side_ = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStreamFromGlobalPool(device_);
  }
}

void DeviceBatches::stage(const Batch& batch) {
  if (staged_) throw std::logic_error("DeviceBatches::stage: a batch is already staged");
  Staged s;
  if (side_ && batch.images.is_pinned() && batch.labels.is_pinned()) {
    c10::StreamGuard on_side(*side_);
    s.images = batch.images.to(device_, /*non_blocking=*/true);
    s.labels = batch.labels.to(device_, /*non_blocking=*/true);
    s.copied.emplace(c10::DeviceType::CUDA);
    s.copied->record(*side_);
  } else {
    // Pageable memory or the CPU: a synchronous copy (a no-op on the CPU).
    s.images = batch.images.to(device_);
    s.labels = batch.labels.to(device_);
  }
  staged_ = std::move(s);
}

std::pair<torch::Tensor, torch::Tensor> DeviceBatches::take_raw() {
  if (!staged_) throw std::logic_error("DeviceBatches::take: nothing is staged");
  Staged s = std::move(*staged_);
  staged_.reset();
  if (s.copied) {
    const c10::Stream current = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(device_);
    current.wait(*s.copied);
    // The tensors were allocated on the side stream; tell the caching allocator that the compute stream
    // uses them too, so their memory is not handed out again before that work is done.
    s.images.record_stream(current);
    s.labels.record_stream(current);
  }
  return {s.images, s.labels};
}

std::pair<torch::Tensor, torch::Tensor> DeviceBatches::take() {
  auto [images, labels] = take_raw();
  return {normalize_images(images, mean_, std_), labels};
}

}  // namespace convnets
