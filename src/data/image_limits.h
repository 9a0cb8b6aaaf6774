// Decompression-bomb limits shared by every image decoder (JPEG, PNG), process-wide like PIL's
// Image.MAX_IMAGE_PIXELS: a header claiming more pixels is refused before anything is allocated, so the
// memory one decode can take is bounded by the limit, whatever the file claims (README, Reliability).
#pragma once
#include <cstdint>

#include "data/image.h"

namespace convnets {

// PIL's error threshold (twice its DecompressionBombWarning's 89,478,485 pixels): a 13,377 x 13,377 image.
constexpr int64_t kDefaultMaxImagePixels = 178956970;
// A progressive JPEG re-reads its coefficients on every scan; real files have about 10 scans. More than this
// is a CPU-time bomb (libjpeg-turbo's TurboJPEG suggests the same limit).
constexpr int kMaxJpegScans = 500;

// An image whose size exceeds the configured limit (an ImageDecodeError: a data loader skips it like any
// undecodable record and reports it).
class ImageTooLargeError : public ImageDecodeError {
 public:
  using ImageDecodeError::ImageDecodeError;
};

// The pixel limit (width x height) for every decode in this process; 0 or less restores the default.
void set_max_image_pixels(int64_t pixels);
int64_t max_image_pixels();

// Throws ImageTooLargeError naming `format` when width x height (computed in 64 bits) exceeds the limit,
// or when either side is not positive.
void check_image_size(int64_t width, int64_t height, const char* format);

// The most memory a JPEG decode may ask libjpeg's memory manager for: 8 bytes per allowed pixel (the full
// coefficient buffer of a progressive 4:4:4:4 CMYK image) plus 16 MiB of tables and row buffers.
int64_t max_jpeg_decoder_memory();

}  // namespace convnets
