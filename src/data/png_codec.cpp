#include "data/png_codec.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "data/image_limits.h"

namespace convnets {
namespace {

// Everything libpng's callbacks touch, and everything that must survive a longjmp: it lives behind a pointer,
// so its members are memory, not registers, when setjmp returns a second time.
struct ReadState {
  std::string_view data;
  size_t position = 0;
  std::jmp_buf jump;
  char message[256] = {0};
  std::unique_ptr<uint8_t[]> rows;  // the decoded image, channels x bytes per sample as libpng delivers them
  std::vector<png_bytep> row_pointers;
};

void on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<ReadState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", message);
  std::longjmp(state->jump, 1);
}

void on_warning(png_structp, png_const_charp) {}  // e.g. unknown chunks or bad CRCs in ancillary ones

void on_read(png_structp png, png_bytep out, png_size_t length) {
  auto* state = static_cast<ReadState*>(png_get_io_ptr(png));
  if (length > state->data.size() - state->position) png_error(png, "the file ends inside the image data");
  std::memcpy(out, state->data.data() + state->position, length);
  state->position += length;
}

struct ReadStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

}  // namespace

bool is_png(std::string_view bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

ImageU8 decode_png(std::string_view bytes) {
  if (!is_png(bytes)) throw PngError("not a PNG (no signature)");
  auto state = std::make_unique<ReadState>();
  state->data = bytes;
  ReadStructs s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, state.get(), on_error, on_warning);
  if (!s.png) throw PngError("libpng: out of memory");
  s.info = png_create_info_struct(s.png);
  if (!s.info) throw PngError("libpng: out of memory");
  // What PIL's Image.open(...).convert("RGB") gives, which torchvision's loader uses: palette colours (a
  // tRNS transparency is ignored), 1/2/4-bit grey scaled to 0..255, 16-bit samples reduced to their high
  // byte, alpha dropped without compositing; except 16-bit grey without alpha, which PIL opens as "I;16" and
  // clips to 0..255 on the way to RGB.
  int width = 0, height = 0, channels = 0;
  bool gray16_clip = false;
  if (setjmp(state->jump)) throw PngError(std::string("corrupt PNG: ") + state->message);
  png_set_read_fn(s.png, state.get(), on_read);
  // Bounded memory whatever the file claims: the size is checked (in 64 bits) before any row buffer exists,
  // and ancillary chunks (zTXt / iCCP can be deflate bombs of their own) are capped in size and number.
  png_set_user_limits(s.png, 1000000, 1000000);
  png_set_chunk_malloc_max(s.png, 16 << 20);
  png_set_chunk_cache_max(s.png, 1000);
  png_read_info(s.png, s.info);
  width = static_cast<int>(png_get_image_width(s.png, s.info));
  height = static_cast<int>(png_get_image_height(s.png, s.info));
  check_image_size(width, height, "PNG");  // a C++ throw from here is safe: no libpng frame is active
  const int color_type = png_get_color_type(s.png, s.info);
  const int depth = png_get_bit_depth(s.png, s.info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s.png);
  gray16_clip = color_type == PNG_COLOR_TYPE_GRAY && depth == 16;
  if (depth == 16 && !gray16_clip) png_set_strip_16(s.png);
  // Expanding a palette also turns its tRNS chunk into alpha (libpng): dropped like any alpha.
  if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(s.png, s.info, PNG_INFO_tRNS))
    png_set_strip_alpha(s.png);
  (void)png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  channels = png_get_channels(s.png, s.info);
  const size_t row_bytes = png_get_rowbytes(s.png, s.info);
  if (row_bytes != static_cast<size_t>(width) * static_cast<size_t>(channels) * (gray16_clip ? 2 : 1))
    png_error(s.png, "unexpected row layout after the transforms");
  // Not zero-filled: pages are only touched as libpng writes decoded rows into them.
  state->rows.reset(new uint8_t[row_bytes * static_cast<size_t>(height)]);
  state->row_pointers.resize(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) state->row_pointers[y] = state->rows.get() + row_bytes * y;
  png_read_image(s.png, state->row_pointers.data());
  png_read_end(s.png, nullptr);

  ImageU8 out(height, width);
  const size_t n = static_cast<size_t>(width) * static_cast<size_t>(height);
  const uint8_t* src = state->rows.get();
  if (gray16_clip) {
    for (size_t p = 0; p < n; ++p) {
      const unsigned v = (static_cast<unsigned>(src[2 * p]) << 8) | src[2 * p + 1];
      out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] =
          static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  } else if (channels == 1) {
    for (size_t p = 0; p < n; ++p) out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = src[p];
  } else if (channels == 3) {
    std::memcpy(out.pixels.data(), src, 3 * n);
  } else {
    throw PngError("PNG decodes to " + std::to_string(channels) + " channels; expected 1 or 3");
  }
  return out;
}

}  // namespace convnets
