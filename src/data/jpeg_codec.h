// JPEG decode and encode through libjpeg-turbo's libjpeg API. Decoding is fused with cropping: only the
// requested rectangle is decoded (jpeg_crop_scanline / jpeg_skip_scanlines), at the smallest DCT scale s/8
// that keeps it at least as large as the size it will be resized to.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

#include "data/image.h"

namespace convnets {

// Corrupt or unsupported JPEG data (libjpeg errors and "corrupt data" warnings alike).
class JpegError : public ImageDecodeError {
 public:
  using ImageDecodeError::ImageDecodeError;
};

struct JpegInfo {
  int width = 0, height = 0, components = 0;
};
JpegInfo read_jpeg_info(std::string_view jpeg);

struct DecodeOptions {
  // Region to decode in full-resolution pixels; width 0 means the whole image.
  CropRect crop{};
  // The size the region will be resized to afterwards: the DCT scale is chosen so that the decoded region is
  // at least this large. 0 decodes at full resolution.
  int min_width = 0, min_height = 0;
  // Forces the DCT scale numerator (1..8, over 8) instead of choosing it from min_width/min_height.
  int scale_num = 0;
};

// Decodes to RGB (grayscale is replicated; CMYK/YCCK, Adobe-inverted or not, is converted as PIL does).
// The result covers `crop` scaled by scale_num/8 (the chosen scale is returned in `scale_num`, 8 = full
// size).
ImageU8 decode_jpeg(std::string_view jpeg, const DecodeOptions& options = {}, int* scale_num = nullptr);

// Baseline RGB JPEG at `quality` (1..100) with 4:2:0 chroma subsampling, as PIL's default.
std::string encode_jpeg(const ImageU8& image, int quality = 95);

}  // namespace convnets
