#include "data/image_limits.h"

#include <atomic>
#include <string>

namespace convnets {
namespace {

std::atomic<int64_t> g_max_pixels{kDefaultMaxImagePixels};

}  // namespace

void set_max_image_pixels(int64_t pixels) {
  g_max_pixels.store(pixels > 0 ? pixels : kDefaultMaxImagePixels);
}

int64_t max_image_pixels() {
  return g_max_pixels.load();
}

void check_image_size(int64_t width, int64_t height, const char* format) {
  if (width <= 0 || height <= 0) {
    throw ImageDecodeError(std::string(format) + " claims an empty image (" + std::to_string(width) + "x" +
                           std::to_string(height) + ")");
  }
  const int64_t limit = max_image_pixels();
  // width and height come from 16- or 32-bit header fields: their product fits in 64 bits.
  if (width * height > limit) {
    throw ImageTooLargeError(std::string(format) + " of " + std::to_string(width) + "x" +
                             std::to_string(height) + " = " + std::to_string(width * height) +
                             " pixels exceeds the limit of " + std::to_string(limit) +
                             " (max_image_pixels; a decompression bomb?)");
  }
}

int64_t max_jpeg_decoder_memory() {
  return max_image_pixels() * 8 + (int64_t{16} << 20);
}

}  // namespace convnets
