// An 8-bit RGB image in HWC order, the unit the CPU side of the input pipeline works on.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace convnets {

// An image that cannot be decoded: corrupt data, or a format we do not read (JpegError, PngError).
class ImageDecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImageU8 {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3, row-major RGB

  ImageU8() = default;
  ImageU8(int h, int w) : height(h), width(w), pixels(static_cast<size_t>(h) * w * 3) {}
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
};

// A rectangle in pixel coordinates of the full-resolution image.
struct CropRect {
  int x = 0, y = 0, width = 0, height = 0;
};

}  // namespace convnets
