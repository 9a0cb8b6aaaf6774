#include "data/png_codec.h"

#include <png.h>

#include <cstring>

namespace convnets {

bool is_png(std::string_view bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

ImageU8 decode_png(std::string_view png) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, png.data(), png.size())) {
    throw PngError(std::string("invalid PNG: ") + image.message);
  }
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  if (image.width == 0 || image.height == 0 || image.width > 65535 || image.height > 65535) {
    png_image_free(&image);
    throw PngError("unsupported PNG size " + std::to_string(image.width) + "x" +
                   std::to_string(image.height));
  }
  std::vector<uint8_t> buffer(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    throw PngError("corrupt PNG: " + message);
  }
  ImageU8 out(static_cast<int>(image.height), static_cast<int>(image.width));
  if (!alpha) {
    std::memcpy(out.pixels.data(), buffer.data(), out.pixels.size());
  } else {
    for (size_t p = 0, n = static_cast<size_t>(out.width) * out.height; p < n; ++p) {
      std::memcpy(&out.pixels[3 * p], &buffer[4 * p], 3);
    }
  }
  return out;
}

}  // namespace convnets
