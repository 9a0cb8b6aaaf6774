// Decode + random-resized crop + flip throughput on one core (the training transform's CPU cost per image).
// Usage: bench_decode DIR [--exact | --decode-only]
//   --exact: full-resolution decode, no DCT scaling; --decode-only: the sampled crop's decode alone.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/jpeg_codec.h"
#include "data/transforms.h"
#include "util/file_io.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [--exact]\n", argv[0]);
    return 2;
  }
  const std::string mode = argc > 2 ? argv[2] : "";
  const bool exact = mode == "--exact", decode_only = mode == "--decode-only";
  std::vector<std::string> jpegs;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    if (entry.path().extension() == ".jpg") jpegs.push_back(convnets::read_file(entry.path().string()));
  }
  if (jpegs.empty()) {
    std::fprintf(stderr, "no .jpg files in %s\n", argv[1]);
    return 1;
  }
  convnets::TrainTransformOptions options;
  options.size = 224;
  options.sampler = convnets::CropSampler::kResizedCrop;  // torchvision's RandomResizedCrop(224) parameters
  options.dct_scaling = !exact;
  convnets::Rng rng(0);
  size_t checksum = 0;
  for (size_t i = 0; i < std::min<size_t>(jpegs.size(), 50); ++i)
    checksum += convnets::train_transform(jpegs[i], {}, options, rng).pixels[0];
  const auto start = std::chrono::steady_clock::now();
  for (const auto& jpeg : jpegs) {
    if (decode_only) {
      const auto info = convnets::read_jpeg_info(jpeg);
      const auto crop = convnets::sample_resized_crop(info.width, info.height, options.resized, rng);
      checksum += convnets::decode_jpeg(jpeg, {.crop = crop, .min_width = 224, .min_height = 224}).pixels[0];
    } else {
      checksum += convnets::train_transform(jpeg, {}, options, rng).pixels[0];
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f\n", static_cast<double>(jpegs.size()) / seconds);
  std::fprintf(stderr, "checksum %zu\n", checksum);
  return 0;
}
