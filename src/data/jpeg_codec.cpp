#include "data/jpeg_codec.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "data/image_limits.h"
// clang-format off
#include <jpeglib.h>
// clang-format on

namespace convnets {
namespace {

// libjpeg reports fatal errors through error_exit (which must not return) and corrupt-data warnings through
// emit_message(-1). Both become a JpegError: the caller must not train on half-grey images.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  int warnings;
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0 && err->warnings++ == 0) (*cinfo->err->format_message)(cinfo, err->message);
}

// Scaled size as libjpeg computes it: ceil(size * s / 8).
// Called by libjpeg while it reads: stops a progressive file with an absurd number of scans (each one makes
// libjpeg revisit every coefficient of the image) before it burns minutes of CPU.
void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

int scaled(int size, int s) {
  return (size * s + 7) / 8;
}

int choose_scale(int width, int height, int min_width, int min_height) {
  if (min_width <= 0 && min_height <= 0) return 8;
  for (int s = 1; s < 8; ++s) {
    if (scaled(width, s) >= min_width && scaled(height, s) >= min_height) return s;
  }
  return 8;
}

void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int n, bool adobe_inverted) {
  for (int i = 0; i < n; ++i, in += 4, out += 3) {
    // Adobe writes inverted CMYK (as PIL reads it with mode "CMYK;I"); then RGB = C*K/255.
    int c = in[0], m = in[1], y = in[2], k = in[3];
    if (!adobe_inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    out[0] = static_cast<uint8_t>((c * k + 127) / 255);
    out[1] = static_cast<uint8_t>((m * k + 127) / 255);
    out[2] = static_cast<uint8_t>((y * k + 127) / 255);
  }
}

}  // namespace

JpegInfo read_jpeg_info(std::string_view jpeg) {
  jpeg_decompress_struct cinfo;
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  JpegInfo info;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw JpegError(std::string("invalid JPEG header: ") + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(jpeg.data()),
               static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&cinfo, TRUE);
  info = {static_cast<int>(cinfo.image_width), static_cast<int>(cinfo.image_height), cinfo.num_components};
  jpeg_destroy_decompress(&cinfo);
  return info;
}

ImageU8 decode_jpeg(std::string_view jpeg, const DecodeOptions& options, int* scale_num) {
  jpeg_decompress_struct cinfo;
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  // Everything that lives across setjmp is constructed before it.
  ImageU8 out;
  std::vector<uint8_t> row_buffer;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw JpegError(std::string("corrupt JPEG: ") + err.message);
  }
  jpeg_create_decompress(&cinfo);
  // Bounded memory and time whatever the header claims: libjpeg's allocations are capped (its memory
  // manager has no backing store, so going over is an error), the size is checked before any buffer exists,
  // and the number of progressive scans is limited.
  cinfo.mem->max_memory_to_use = static_cast<long>(max_jpeg_decoder_memory());
  jpeg_progress_mgr progress{};
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(jpeg.data()),
               static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int full_w = static_cast<int>(cinfo.image_width), full_h = static_cast<int>(cinfo.image_height);
  try {
    check_image_size(full_w, full_h, "JPEG");
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  CropRect crop = options.crop.width > 0 ? options.crop : CropRect{0, 0, full_w, full_h};
  if (crop.x < 0 || crop.y < 0 || crop.width <= 0 || crop.height <= 0 || crop.x + crop.width > full_w ||
      crop.y + crop.height > full_h) {
    jpeg_destroy_decompress(&cinfo);
    throw JpegError("crop " + std::to_string(crop.width) + "x" + std::to_string(crop.height) + "+" +
                    std::to_string(crop.x) + "+" + std::to_string(crop.y) + " outside the " +
                    std::to_string(full_w) + "x" + std::to_string(full_h) + " image");
  }
  if (options.scale_num < 0 || options.scale_num > 8) {
    jpeg_destroy_decompress(&cinfo);
    throw JpegError("scale_num must be 1..8, got " + std::to_string(options.scale_num));
  }
  const int s = options.scale_num > 0
                    ? options.scale_num
                    : choose_scale(crop.width, crop.height, options.min_width, options.min_height);
  if (scale_num) *scale_num = s;
  cinfo.scale_num = static_cast<unsigned>(s);
  cinfo.scale_denom = 8;
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);

  // The crop in the scaled image; libjpeg widens the horizontal range to iMCU boundaries.
  const int x0 = crop.x * s / 8, y0 = crop.y * s / 8;
  const int x1 = std::min<int>(scaled(crop.x + crop.width, s), static_cast<int>(cinfo.output_width));
  const int y1 = std::min<int>(scaled(crop.y + crop.height, s), static_cast<int>(cinfo.output_height));
  // One extra column on each side: fancy chroma upsampling reads a neighbour, which libjpeg replicates at the
  // edge of the decoded region (it widens the crop only leftwards, to an iMCU boundary). With the margin the
  // kept pixels are exactly those of a full decode.
  const int margin_x0 = std::max(0, x0 - 1);
  const int margin_x1 = std::min<int>(x1 + 1, static_cast<int>(cinfo.output_width));
  JDIMENSION xoffset = static_cast<JDIMENSION>(margin_x0),
             xwidth = static_cast<JDIMENSION>(margin_x1 - margin_x0);
  if (xwidth < cinfo.output_width) jpeg_crop_scanline(&cinfo, &xoffset, &xwidth);
  if (y0 > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(y0));

  const int comps = cinfo.output_components;
  out = ImageU8(y1 - y0, x1 - x0);
  row_buffer.resize(static_cast<size_t>(xwidth) * comps);
  const int skip = (x0 - static_cast<int>(xoffset)) * comps;
  for (int y = 0; y < out.height; ++y) {
    JSAMPROW row = row_buffer.data();
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      std::snprintf(err.message, sizeof(err.message), "premature end of data at row %d", y0 + y);
      jpeg_destroy_decompress(&cinfo);
      throw JpegError(std::string("corrupt JPEG: ") + err.message);
    }
    if (comps == 3) {
      std::memcpy(out.row(y), row_buffer.data() + skip, static_cast<size_t>(out.width) * 3);
    } else if (comps == 4) {
      cmyk_to_rgb(row_buffer.data() + skip, out.row(y), out.width, cinfo.saw_Adobe_marker);
    } else {
      jpeg_destroy_decompress(&cinfo);
      throw JpegError("unsupported JPEG with " + std::to_string(comps) + " output components");
    }
  }
  // Stop early: the rows below the crop are never decoded.
  jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (err.warnings > 0) throw JpegError(std::string("corrupt JPEG data: ") + err.message);
  return out;
}

std::string encode_jpeg(const ImageU8& image, int quality) {
  if (image.width <= 0 || image.height <= 0) throw JpegError("cannot encode an empty image");
  jpeg_compress_struct cinfo;
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
    throw JpegError(std::string("JPEG encoding failed: ") + err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, std::clamp(quality, 1, 100), TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    auto* row = const_cast<JSAMPROW>(image.row(static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

}  // namespace convnets
