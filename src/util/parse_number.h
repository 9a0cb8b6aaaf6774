// Whole-text integer parsing, for configuration values and environment variables alike.
#pragma once
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace convnets {

// `text` as a decimal int64 (leading white space and a sign allowed, as strtoll), or nullopt when any
// character is left over, none is a digit, or the value overflows.
inline std::optional<int64_t> parse_int64(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
    text.remove_prefix(1);
  if (text.size() > 1 && text.front() == '+' && text[1] != '-') text.remove_prefix(1);
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return v;
}

// `text` as a finite number (as strtod reads it: decimal or exponent form), or nullopt when any character is
// left over, there is none, or it is infinite or NaN.
inline std::optional<double> parse_finite_double(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.empty() || used != text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace convnets
