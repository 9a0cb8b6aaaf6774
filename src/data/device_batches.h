// Loader batches on the compute device, one batch ahead. On CUDA the copy of a staged batch (uint8, from the
// loader's pinned host memory) runs on a side stream, so it overlaps the step that is computing; take() makes
// the compute stream wait for that copy's event, and the normalisation then runs on the compute stream.
// On the CPU a staged batch is only held until take(). Either way the result equals the synchronous path
// (batch.images.to(device), then normalize_images) exactly: the same bytes reach the same kernel.
#pragma once
#include <c10/core/Event.h>
#include <c10/core/Stream.h>

#include <array>
#include <memory>
#include <optional>
#include <utility>

#include "data/loader.h"

namespace convnets {

class DeviceBatches {
 public:
  DeviceBatches(torch::Device device, const std::array<double, 3>& mean, const std::array<double, 3>& std);
  DeviceBatches(const DeviceBatches&) = delete;
  DeviceBatches& operator=(const DeviceBatches&) = delete;

  // Starts moving `batch` to the device; at most one batch is staged at a time.
  void stage(const Batch& batch);
  bool has_staged() const { return staged_.has_value(); }
  // Forgets the staged batch (a new epoch or stage restarts the loader).
  void clear() { staged_.reset(); }

  // The staged batch on the device as uint8 NHWC + labels, usable on the current stream.
  std::pair<torch::Tensor, torch::Tensor> take_raw();
  // The staged batch normalised: float NCHW (channels_last), (x / 255 - mean) / std, + labels.
  std::pair<torch::Tensor, torch::Tensor> take();

  // Whether copies run on a side stream (CUDA device and pinned batches).
  bool overlapping() const { return side_.has_value(); }

 private:
  struct Staged {
    torch::Tensor images, labels;
    std::optional<c10::Event> copied;  // recorded on the side stream after the copy
  };
  torch::Device device_;
  std::array<double, 3> mean_, std_;
  std::optional<c10::Stream> side_;
  std::optional<Staged> staged_;
};

}  // namespace convnets
