// Image resizing with Pillow's algorithm (Resample.c): separable convolution whose filter support widens with
// the downscale factor (antialiasing), coefficients in 22-bit fixed point, horizontal pass first. For the
// same input and box the output is bit-identical to PIL's Image.resize(size, filter, box).
#pragma once
#include <string>

#include "data/image.h"
#include "util/interpolation.h"

namespace convnets {

// Source rectangle in (fractional) pixel coordinates of `in`.
struct Box {
  double x0, y0, x1, y1;
};

ImageU8 resize(const ImageU8& in, int out_width, int out_height, Interpolation filter, const Box& box);
inline ImageU8 resize(const ImageU8& in, int out_width, int out_height, Interpolation filter) {
  return resize(in, out_width, out_height, filter,
                {0.0, 0.0, static_cast<double>(in.width), static_cast<double>(in.height)});
}

void flip_horizontal(ImageU8& image);

}  // namespace convnets
