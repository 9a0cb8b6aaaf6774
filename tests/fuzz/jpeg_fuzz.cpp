// libFuzzer: the JPEG wrapper (header, full decode, ROI + DCT-scaled decode) turns every malformed input into
// a JpegError, with no memory errors in our code or libjpeg's.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/image_limits.h"
#include "data/jpeg_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  // The first bytes choose the crop and scale; the rest is the JPEG.
  const int scale = 1 + data[0] % 8;
  const std::string_view jpeg(reinterpret_cast<const char*>(data + 2), size - 2);
  // The decoder's own pixel limit (what bounds its memory) is under test; lowered so runs stay fast.
  convnets::set_max_image_pixels(4096 * 4096);
  try {
    const convnets::JpegInfo info = convnets::read_jpeg_info(jpeg);
    convnets::decode_jpeg(jpeg);
    const int w = std::max(1, info.width * (1 + data[1] % 8) / 8), h = std::max(1, info.height / 2);
    convnets::decode_jpeg(jpeg, {.crop = {info.width - w, info.height - h, w, h}, .scale_num = scale});
  } catch (const convnets::ImageDecodeError&) {
  }
  return 0;
}
