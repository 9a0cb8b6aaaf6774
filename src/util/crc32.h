// CRC-32 (IEEE 802.3 polynomial, as zip uses it).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convnets {
// Continues `crc` (0 to start) over `size` bytes.
uint32_t crc32_ieee(const void* data, size_t size, uint32_t crc = 0);
}  // namespace convnets
