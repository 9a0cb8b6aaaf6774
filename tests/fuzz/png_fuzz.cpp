// libFuzzer: the PNG decoder turns every malformed input into a PngError (or an ImageTooLargeError for a
// header over the pixel limit), with no memory errors in our code or libpng's and no allocation beyond the
// limit (run with -malloc_limit_mb).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/image_limits.h"
#include "data/png_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convnets::set_max_image_pixels(4096 * 4096);  // the limit itself is the defence under test; runs stay fast
  try {
    convnets::decode_png(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const convnets::ImageDecodeError&) {
  }
  return 0;
}
