// The ImageNet TFRecord schema of build_imagenet_data.py (docs/recipes.md).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convnets {

struct BoundingBox {
  float ymin, xmin, ymax, xmax;  // normalised to [0, 1]
};

struct ImageRecord {
  std::string_view encoded;  // JPEG bytes, a view into the shard
  int64_t label;             // 0-based: the file's image/class/label (1..N) minus 1
  std::vector<BoundingBox> boxes{};
};

// Reads image/encoded, image/class/label and the image/object/bbox/* lists. Returns false with a reason
// (missing key, wrong type, label outside [1, num_classes], unequal bbox lists) in `error`.
bool decode_imagenet_record(std::string_view example_bytes, int64_t num_classes, ImageRecord& out,
                            std::string& error);

// Everything build_imagenet_data.py writes for one image; `label` is 1-based as in the files.
struct ImageRecordFields {
  std::string jpeg;
  int64_t label = 0;
  int64_t height = 0, width = 0;
  std::string filename{}, synset{}, text{};
  std::vector<BoundingBox> boxes{};
};
std::string encode_imagenet_record(const ImageRecordFields& fields);

}  // namespace convnets
