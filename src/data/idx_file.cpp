#include "data/idx_file.h"

#include <zlib.h>

#include <stdexcept>

#include "util/file_io.h"

namespace convnets {
namespace {

std::string gunzip(const std::string& compressed, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error(path + ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  char chunk[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      throw std::runtime_error(path + ": corrupt gzip data (" + (zs.msg ? zs.msg : "truncated") + ")");
    }
    out.append(chunk, sizeof(chunk) - zs.avail_out);
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw std::runtime_error(path + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace

IdxArray read_idx_file(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b) {
    bytes = gunzip(bytes, path);
  }
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if (bytes.size() < 4 || u8(0) != 0 || u8(1) != 0 || u8(2) != 0x08) {
    throw std::runtime_error(path + ": not an unsigned-byte IDX file (bad magic)");
  }
  const int dims = u8(3);
  if (dims < 1 || dims > 4 || bytes.size() < 4 + 4 * static_cast<size_t>(dims)) {
    throw std::runtime_error(path + ": bad IDX dimension count " + std::to_string(dims));
  }
  IdxArray array;
  uint64_t count = 1;
  for (int d = 0; d < dims; ++d) {
    const size_t o = 4 + 4 * static_cast<size_t>(d);
    const uint64_t n =
        (uint64_t{u8(o)} << 24) | (uint64_t{u8(o + 1)} << 16) | (uint64_t{u8(o + 2)} << 8) | u8(o + 3);
    array.shape.push_back(static_cast<int64_t>(n));
    count *= n;
  }
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  if (bytes.size() - header != count) {
    throw std::runtime_error(path + ": IDX header promises " + std::to_string(count) + " bytes, file holds " +
                             std::to_string(bytes.size() - header));
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

}  // namespace convnets
