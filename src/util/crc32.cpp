#include "util/crc32.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace convnets {
namespace {

using Tables = std::array<std::array<uint32_t, 256>, 4>;

// Slicing-by-4 tables for a reflected polynomial.
Tables make_tables(uint32_t polynomial) {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? polynomial ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 4; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

// Works on the inverted register (callers invert before and after).
uint32_t crc_slice4(const Tables& t, const uint8_t* p, size_t size, uint32_t crc) {
  while (size >= 4) {
    uint32_t word;
    std::memcpy(&word, p, 4);  // little-endian hosts only (x86-64, aarch64)
    crc ^= word;
    crc = t[3][crc & 0xFF] ^ t[2][(crc >> 8) & 0xFF] ^ t[1][(crc >> 16) & 0xFF] ^ t[0][crc >> 24];
    p += 4;
    size -= 4;
  }
  while (size-- > 0) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

const Tables kIeee = make_tables(0xEDB88320u);
const Tables kCastagnoli = make_tables(0x82F63B78u);

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t size, uint32_t crc) {
  uint64_t c = crc;
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    size -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (size-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

const bool kHasSse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t crc32_ieee(const void* data, size_t size, uint32_t crc) {
  return ~crc_slice4(kIeee, static_cast<const uint8_t*>(data), size, ~crc);
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (kHasSse42) return ~crc32c_sse42(p, size, ~crc);
#endif
  return ~crc_slice4(kCastagnoli, p, size, ~crc);
}

}  // namespace convnets
