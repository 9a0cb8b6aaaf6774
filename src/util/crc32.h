// CRC-32 in its two flavours: IEEE 802.3 (zip) and Castagnoli (CRC-32C, TFRecord framing).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convnets {

// Each continues `crc` (0 to start) over `size` bytes.
uint32_t crc32_ieee(const void* data, size_t size, uint32_t crc = 0);
// Uses the SSE4.2 crc32 instruction when the CPU has it.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// TFRecord stores masked CRC-32Cs: rotate right by 15 bits and add a constant.
inline uint32_t mask_crc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace convnets
