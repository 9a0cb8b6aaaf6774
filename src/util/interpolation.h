// The image interpolation filters (Pillow's), as one enum for the registry's defaults (models/) and the
// resizing that runs them (data/resample.h).
#pragma once
#include <stdexcept>
#include <string>

namespace convnets {

enum class Interpolation { kBilinear, kBicubic };

inline const char* interpolation_name(Interpolation i) {
  return i == Interpolation::kBicubic ? "bicubic" : "bilinear";
}

// "bilinear" | "bicubic"; anything else is an error naming the allowed ones.
inline Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::kBilinear;
  if (name == "bicubic") return Interpolation::kBicubic;
  throw std::invalid_argument("interpolation '" + name + "' is not one of: bilinear, bicubic");
}

}  // namespace convnets
