// Decompression bombs: images whose headers claim huge sizes, progressive JPEGs with hundreds of scans, and
// gzip bombs in IDX files. Each is refused with a clear error, and the memory the attempt takes is measured
// in a child process (peak resident set growth), so a decoder that allocates first and checks later fails.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include "data/idx_file.h"
#include "data/image_limits.h"
#include "data/jpeg_codec.h"
#include "data/png_codec.h"
#include "test_support.h"
#include "util/crc32.h"

namespace convnets {
namespace {

int64_t status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(std::strlen(field)));
  }
  return -1;
}

struct Outcome {
  std::string error;       // what the call threw ("" when it returned)
  int64_t peak_growth_kb;  // peak resident set growth during the call
};

// Runs `fn` in a forked child (a crash or a runaway allocation cannot take the test binary with it) and
// reports its error message and how much its peak resident set grew.
Outcome run_measured(const std::function<void()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return {"pipe failed", -1};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    // Reset the high-water mark to the current resident set (Linux >= 4.0).
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
      std::fputs("5", f);
      std::fclose(f);
    }
    const int64_t before = status_kb("VmHWM:");
    std::string error;
    try {
      fn();
    } catch (const std::exception& e) {
      error = e.what();
    }
    const std::string report = std::to_string(status_kb("VmHWM:") - before) + "\n" + error;
    [[maybe_unused]] auto n = ::write(fds[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) report.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || report.empty())
    return {"child died (signal " + std::to_string(WTERMSIG(status)) + ")", -1};
  const size_t nl = report.find('\n');
  return {report.substr(nl + 1), std::stoll(report.substr(0, nl))};
}

constexpr int64_t kSmallKb = 64 * 1024;  // the bound on memory growth for a refused file: 64 MiB

void put_be32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}

std::string png_chunk(const char* type, const std::string& data) {
  std::string chunk;
  put_be32(chunk, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  chunk += body;
  put_be32(chunk, crc32_ieee(body.data(), body.size()));
  return chunk;
}

// A PNG whose IHDR claims width x height 8-bit RGB, with `rows` rows of real (zero) data in its IDAT.
std::string png_claiming(uint32_t width, uint32_t height, uint32_t rows) {
  std::string ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // depth 8, RGB, deflate, filter 0, no interlace
  std::string raw(static_cast<size_t>(rows) * (1 + 3 * static_cast<size_t>(width)), '\0');
  uLongf packed_size = compressBound(raw.size());
  std::string packed(packed_size, '\0');
  compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size, reinterpret_cast<const Bytef*>(raw.data()),
           raw.size());
  packed.resize(packed_size);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", packed) +
         png_chunk("IEND", "");
}

// A grey JPEG written by libjpeg with an optional custom progressive scan script.
std::string encode_gray_jpeg(int width, int height, const std::vector<jpeg_scan_info>& scans) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = 1;
  cinfo.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  if (!scans.empty()) {
    cinfo.scan_info = scans.data();
    cinfo.num_scans = static_cast<int>(scans.size());
  }
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<unsigned char> row(static_cast<size_t>(width));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) row[x] = static_cast<unsigned char>((x * 7 + y * 13) & 0xFF);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  return out;
}

// Rewrites the frame size in the SOF marker of a JPEG.
std::string with_jpeg_size(std::string jpeg, uint16_t width, uint16_t height) {
  for (size_t i = 2; i + 9 < jpeg.size(); ++i) {
    const auto m = static_cast<uint8_t>(jpeg[i + 1]);
    if (static_cast<uint8_t>(jpeg[i]) == 0xFF && (m == 0xC0 || m == 0xC2)) {
      jpeg[i + 5] = static_cast<char>(height >> 8), jpeg[i + 6] = static_cast<char>(height & 0xFF);
      jpeg[i + 7] = static_cast<char>(width >> 8), jpeg[i + 8] = static_cast<char>(width & 0xFF);
      return jpeg;
    }
  }
  ADD_FAILURE() << "no SOF marker";
  return jpeg;
}

// Progressive scan script for one grey component: DC, then every AC coefficient in its own band, each in
// `passes` successive-approximation passes: 1 + 63 * passes scans.
std::vector<jpeg_scan_info> many_scans(int passes) {
  std::vector<jpeg_scan_info> scans;
  scans.push_back({1, {0, 0, 0, 0}, 0, 0, 0, 0});
  for (int k = 1; k <= 63; ++k) {
    scans.push_back({1, {0, 0, 0, 0}, k, k, 0, passes - 1});
    for (int al = passes - 2; al >= 0; --al) scans.push_back({1, {0, 0, 0, 0}, k, k, al + 1, al});
  }
  return scans;
}

}  // namespace

// The cases: a 4 KB progressive JPEG claiming 32000x32000 took 3.5 GB, a 69-byte PNG header claiming
// 30000x30000 took 3.2 GB. Both are refused from the header now, within a few MB.
TEST(ImageBombs, HeadersClaimingHugeImagesAreRefusedBeforeAllocating) {
  const std::string progressive =
      encode_gray_jpeg(64, 64, many_scans(2));  // progressive, so libjpeg would buffer the whole image
  for (const std::string& jpeg : {with_jpeg_size(progressive, 32000, 32000),
                                  with_jpeg_size(encode_gray_jpeg(64, 64, {}), 32000, 32000)}) {
    const Outcome o = run_measured([&] { decode_jpeg(jpeg); });
    EXPECT_NE(o.error.find("JPEG of 32000x32000 = 1024000000 pixels exceeds the limit of 178956970"),
              std::string::npos)
        << o.error;
    EXPECT_GE(o.peak_growth_kb, 0);
    EXPECT_LT(o.peak_growth_kb, kSmallKb);
  }
  const std::string png = png_claiming(30000, 30000, 0);
  EXPECT_LT(png.size(), 100u);
  const Outcome o = run_measured([&] { decode_png(png); });
  EXPECT_NE(o.error.find("PNG of 30000x30000"), std::string::npos) << o.error;
  EXPECT_LT(o.peak_growth_kb, kSmallKb);
  // PNG allows up to 2^31 - 1 per side: refused (by libpng's per-side limit) without overflow or allocation.
  const Outcome wide = run_measured([&] { decode_png(png_claiming(2000000000u, 2000000000u, 0)); });
  EXPECT_NE(wide.error.find("corrupt PNG: Invalid IHDR data"), std::string::npos) << wide.error;
  EXPECT_LT(wide.peak_growth_kb, kSmallKb);
  // 16000 x 16000: each side is allowed, the product is not.
  const Outcome square = run_measured([&] { decode_png(png_claiming(16000, 16000, 0)); });
  EXPECT_NE(square.error.find("PNG of 16000x16000 = 256000000 pixels exceeds the limit"), std::string::npos)
      << square.error;
}

// Products that wrap 32-bit arithmetic: 65500 x 65500 (libjpeg's largest side) = 4,290,250,000 and 50000 x
// 50000 = 2.5e9 are negative or small as int32, so a limit computed in 32 bits would let them through.
TEST(ImageBombs, SizesWhoseProductWraps32BitsAreRefused) {
  for (const std::string& jpeg : {with_jpeg_size(encode_gray_jpeg(64, 64, {}), 65500, 65500),
                                  with_jpeg_size(encode_gray_jpeg(64, 64, many_scans(2)), 65500, 65500)}) {
    const Outcome o = run_measured([&] { decode_jpeg(jpeg); });
    EXPECT_NE(o.error.find("JPEG of 65500x65500 = 4290250000 pixels exceeds the limit"), std::string::npos)
        << o.error;
    EXPECT_LT(o.peak_growth_kb, kSmallKb);
  }
  // 65535 is beyond libjpeg's own limit: refused by libjpeg, with its message.
  const Outcome beyond =
      run_measured([&] { decode_jpeg(with_jpeg_size(encode_gray_jpeg(64, 64, {}), 65535, 65535)); });
  EXPECT_NE(beyond.error.find("corrupt JPEG"), std::string::npos) << beyond.error;
  EXPECT_LT(beyond.peak_growth_kb, kSmallKb);
  const Outcome png = run_measured([&] { decode_png(png_claiming(50000, 50000, 0)); });
  EXPECT_NE(png.error.find("PNG of 50000x50000 = 2500000000 pixels exceeds the limit"), std::string::npos)
      << png.error;
  EXPECT_LT(png.peak_growth_kb, kSmallKb);
  // The check itself, at the products' edges: 2^32 + 1 pixels wraps to 1 in 32 bits.
  EXPECT_THROW(check_image_size(65537, 65537, "test"), ImageTooLargeError);
  EXPECT_THROW(check_image_size(int64_t{1} << 32, 1, "test"), ImageTooLargeError);
  EXPECT_NO_THROW(check_image_size(13377, 13377, "test"));  // 178,944,129: just under PIL's limit
}

// Under the limit, a file that claims a big image but holds no data costs only what it decodes: the PNG
// row buffer is no longer zero-filled up front (10000 x 10000 x 3 = 300 MB before).
TEST(ImageBombs, ClaimsUnderTheLimitCostOnlyTheDataThatIsThere) {
  const std::string png = png_claiming(10000, 10000, 2);
  const Outcome o = run_measured([&] { decode_png(png); });
  EXPECT_NE(o.error.find("corrupt PNG"), std::string::npos) << o.error;
  EXPECT_LT(o.peak_growth_kb, kSmallKb);
}

// The limit is configurable (max_image_pixels) and applies to real images of both formats.
TEST(ImageBombs, TheLimitIsConfigurable) {
  const std::string jpeg = encode_gray_jpeg(40, 30, {}), png = png_claiming(40, 30, 30);
  EXPECT_EQ(decode_jpeg(jpeg).width, 40);
  EXPECT_EQ(decode_png(png).height, 30);
  set_max_image_pixels(1199);
  EXPECT_THROW(decode_jpeg(jpeg), ImageTooLargeError);
  EXPECT_THROW(decode_png(png), ImageTooLargeError);
  set_max_image_pixels(1200);
  EXPECT_EQ(decode_jpeg(jpeg).width, 40);
  EXPECT_EQ(decode_png(png).width, 40);
  set_max_image_pixels(0);  // back to the default
  EXPECT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
}

// A progressive JPEG may not have more than kMaxJpegScans scans (each one revisits the whole image).
TEST(ImageBombs, ProgressiveScansAreBounded) {
  const std::string ok = encode_gray_jpeg(64, 64, many_scans(7));  // 442 scans
  EXPECT_EQ(decode_jpeg(ok).width, 64);
  const std::string bomb = encode_gray_jpeg(64, 64, many_scans(9));  // 568 scans
  try {
    decode_jpeg(bomb);
    ADD_FAILURE() << "568 scans were decoded";
  } catch (const JpegError& e) {
    EXPECT_NE(std::string(e.what()).find("more than 500 progressive scans"), std::string::npos) << e.what();
  }
}

// A gzip bomb given to prepare_data (14 MB growing to 4.6 GB before) stops at what the IDX header promises.
TEST(ImageBombs, GzipBombsInIdxFilesStopAtTheHeadersSize) {
  testing::ScratchDir dir;
  auto write_gz = [&](const std::string& name, const std::string& header, size_t zeros) {
    const std::string path = dir.file(name);
    gzFile f = gzopen(path.c_str(), "wb9");
    gzwrite(f, header.data(), static_cast<unsigned>(header.size()));
    const std::string block(1 << 20, '\0');
    for (size_t done = 0; done < zeros; done += block.size())
      gzwrite(f, block.data(), static_cast<unsigned>(std::min(block.size(), zeros - done)));
    gzclose(f);
    return path;
  };
  // A valid header for 1 x 28 x 28 followed by 200 MB.
  std::string header("\x00\x00\x08\x03", 4);
  for (uint32_t n : {1u, 28u, 28u}) put_be32(header, n);
  const std::string bomb = write_gz("bomb-images-idx3-ubyte.gz", header, 200u << 20);
  Outcome o = run_measured([&] { read_idx_file(bomb); });
  EXPECT_NE(o.error.find("decompresses to more than the 800 bytes its IDX header promises"),
            std::string::npos)
      << o.error;
  EXPECT_LT(o.peak_growth_kb, kSmallKb);
  // Zeros from the first byte: refused at the magic number.
  const std::string zeros = write_gz("zeros-images-idx3-ubyte.gz", "", 200u << 20);
  o = run_measured([&] { read_idx_file(zeros); });
  EXPECT_NE(o.error.find("bad magic"), std::string::npos) << o.error;
  EXPECT_LT(o.peak_growth_kb, kSmallKb);
  // A header promising more than 1 GiB is refused before decompressing the payload.
  std::string huge("\x00\x00\x08\x03", 4);
  for (uint32_t n : {60000u, 1000u, 1000u}) put_be32(huge, n);
  o = run_measured([&] { read_idx_file(write_gz("huge-images-idx3-ubyte.gz", huge, 0)); });
  EXPECT_NE(o.error.find("promises more than"), std::string::npos) << o.error;
}

}  // namespace convnets
