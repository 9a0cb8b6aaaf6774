// PNG decode through libpng's simplified API, to 8-bit RGB; an alpha channel is dropped, as PIL's
// convert("RGB") does.
#pragma once
#include <stdexcept>
#include <string_view>

#include "data/image.h"

namespace convnets {

class PngError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool is_png(std::string_view bytes);
ImageU8 decode_png(std::string_view png);

}  // namespace convnets
