// SHA-256 (FIPS 180-4), for naming the exact weights an exported model came from.
#pragma once
#include <string>
#include <string_view>

namespace convnets {

// Lower-case hex digest of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace convnets
