// PNG decode through libpng to 8-bit RGB, exactly as PIL's Image.open(...).convert("RGB") (torchvision's
// loader) sees it: every colour type and bit depth, palettes, interlacing; alpha dropped without compositing.
#pragma once
#include <stdexcept>
#include <string_view>

#include "data/image.h"

namespace convnets {

class PngError : public ImageDecodeError {
 public:
  using ImageDecodeError::ImageDecodeError;
};

bool is_png(std::string_view bytes);
ImageU8 decode_png(std::string_view png);

}  // namespace convnets
