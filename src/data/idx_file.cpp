#include "data/idx_file.h"

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "util/file_io.h"

namespace convnets {
namespace {

// The largest IDX payload we accept (Fashion-MNIST's largest file is 47 MB, EMNIST's 550 MB): a header
// may not make us allocate more.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 30;

// Inflates a gzip stream, streamed in 64 KiB steps, never holding more than `limit` bytes of output. With
// `prefix_only` it returns the first `limit` bytes; otherwise more output than `limit` is an error, so a
// gzip bomb costs at most `limit` bytes of memory.
std::string gunzip(const std::string& compressed, const std::string& path, uint64_t limit, bool prefix_only) {
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
    const size_t got = sizeof(chunk) - zs.avail_out;
    if (out.size() + got > limit) {
      inflateEnd(&zs);
      if (prefix_only) return out.append(chunk, limit - out.size());
      throw std::runtime_error(path + ": decompresses to more than the " + std::to_string(limit) +
                               " bytes its IDX header promises");
    }
    out.append(chunk, got);
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw std::runtime_error(path + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

// Magic, dimension count and sizes: the payload size the header promises, after checking it is sane.
struct IdxHeader {
  size_t header_bytes = 0;
  uint64_t count = 1;
  std::vector<int64_t> shape;
};

IdxHeader parse_idx_header(const std::string& bytes, const std::string& path) {
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if (bytes.size() < 4 || u8(0) != 0 || u8(1) != 0 || u8(2) != 0x08) {
    throw std::runtime_error(path + ": not an unsigned-byte IDX file (bad magic)");
  }
  const int dims = u8(3);
  if (dims < 1 || dims > 4 || bytes.size() < 4 + 4 * static_cast<size_t>(dims)) {
    throw std::runtime_error(path + ": bad IDX dimension count " + std::to_string(dims));
  }
  IdxHeader h;
  h.header_bytes = 4 + 4 * static_cast<size_t>(dims);
  for (int d = 0; d < dims; ++d) {
    const size_t o = 4 + 4 * static_cast<size_t>(d);
    const uint64_t n =
        (uint64_t{u8(o)} << 24) | (uint64_t{u8(o + 1)} << 16) | (uint64_t{u8(o + 2)} << 8) | u8(o + 3);
    h.shape.push_back(static_cast<int64_t>(n));
    // Each factor is below 2^32, the running product at most kMaxIdxBytes: no overflow.
    if (n != 0 && h.count > kMaxIdxBytes / n) {
      throw std::runtime_error(path + ": IDX header promises more than " + std::to_string(kMaxIdxBytes) +
                               " bytes");
    }
    h.count *= n;
  }
  return h;
}

}  // namespace

IdxArray read_idx_file(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b) {
    // The header first (at most 20 bytes), then exactly the size it promises: never more in memory.
    const IdxHeader h = parse_idx_header(gunzip(bytes, path, 20, /*prefix_only=*/true), path);
    bytes = gunzip(bytes, path, h.header_bytes + h.count, /*prefix_only=*/false);
  }
  const IdxHeader h = parse_idx_header(bytes, path);
  IdxArray array;
  array.shape = h.shape;
  if (bytes.size() - h.header_bytes != h.count) {
    throw std::runtime_error(path + ": IDX header promises " + std::to_string(h.count) +
                             " bytes, file holds " + std::to_string(bytes.size() - h.header_bytes));
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(h.header_bytes), bytes.end());
  return array;
}

}  // namespace convnets
