#include "data/imagenet_record.h"

#include "data/example.h"

namespace convnets {

bool decode_imagenet_record(std::string_view bytes, int64_t num_classes, ImageRecord& out,
                            std::string& error) {
  Example example;
  if (!parse_example(bytes, example, error)) {
    error = "malformed tf.train.Example: " + error;
    return false;
  }
  const Feature* encoded = example.find("image/encoded");
  if (!encoded || encoded->kind != Feature::Kind::kBytes || encoded->bytes.size() != 1) {
    error = "missing or malformed key image/encoded (expected one bytes value)";
    return false;
  }
  const Feature* label = example.find("image/class/label");
  if (!label || label->kind != Feature::Kind::kInt64 || label->ints.size() != 1) {
    error = "missing or malformed key image/class/label (expected one int64)";
    return false;
  }
  if (label->ints[0] < 1 || label->ints[0] > num_classes) {
    error =
        "image/class/label " + std::to_string(label->ints[0]) + " outside 1.." + std::to_string(num_classes);
    return false;
  }
  out.encoded = encoded->bytes[0];
  out.label = label->ints[0] - 1;
  out.boxes.clear();
  const char* keys[4] = {"image/object/bbox/ymin", "image/object/bbox/xmin", "image/object/bbox/ymax",
                         "image/object/bbox/xmax"};
  const Feature* lists[4];
  for (int k = 0; k < 4; ++k) {
    lists[k] = example.find(keys[k]);
    if (lists[k] && lists[k]->kind != Feature::Kind::kFloat && lists[k]->kind != Feature::Kind::kNone) {
      error = std::string("key ") + keys[k] + " is not a float list";
      return false;
    }
  }
  const size_t n = lists[0] ? lists[0]->floats.size() : 0;
  for (int k = 1; k < 4; ++k) {
    if ((lists[k] ? lists[k]->floats.size() : 0) != n) {
      error = "bounding-box lists have different lengths";
      return false;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    out.boxes.push_back({lists[0]->floats[i], lists[1]->floats[i], lists[2]->floats[i], lists[3]->floats[i]});
  }
  return true;
}

std::string encode_imagenet_record(const ImageRecordFields& f) {
  std::vector<float> ymin, xmin, ymax, xmax;
  for (const auto& b : f.boxes) {
    ymin.push_back(b.ymin);
    xmin.push_back(b.xmin);
    ymax.push_back(b.ymax);
    xmax.push_back(b.xmax);
  }
  ExampleBuilder e;
  e.add_int64("image/height", f.height)
      .add_int64("image/width", f.width)
      .add_bytes("image/colorspace", "RGB")
      .add_int64("image/channels", 3)
      .add_int64("image/class/label", f.label)
      .add_bytes("image/class/synset", f.synset)
      .add_bytes("image/class/text", f.text)
      .add_floats("image/object/bbox/xmin", xmin)
      .add_floats("image/object/bbox/xmax", xmax)
      .add_floats("image/object/bbox/ymin", ymin)
      .add_floats("image/object/bbox/ymax", ymax)
      .add_int64s("image/object/bbox/label", std::vector<int64_t>(f.boxes.size(), f.label))
      .add_bytes("image/format", "JPEG")
      .add_bytes("image/filename", f.filename)
      .add_bytes("image/encoded", f.jpeg);
  return e.serialize();
}

}  // namespace convnets
