#include "data/prepare_data.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "data/idx_file.h"
#include "data/imagenet_record.h"
#include "data/jpeg_codec.h"
#include "data/record_index.h"
#include "data/tfrecord.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string suffix : {".gz", ""}) {
    const fs::path p = fs::path(dir) / (stem + suffix);
    if (fs::exists(p)) return p.string();
  }
  throw std::runtime_error("no " + stem + "[.gz] in '" + dir + "'");
}

std::string shard_name(const std::string& split, int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s-%05d-of-%05d", split.c_str(), index, count);
  return name;
}

// Splits `records` into `shards` contiguous shards and writes each (atomically) with its index file.
void write_shards(const std::vector<std::string>& records, const std::string& split, int shards,
                  const ShardWriterOptions& options, PrepareReport& report) {
  if (shards < 1) throw std::invalid_argument("shard count for " + split + " must be >= 1");
  const fs::path idx_dir = fs::path(options.output_dir) / "idx";
  fs::create_directories(idx_dir);
  const size_t per_shard = (records.size() + static_cast<size_t>(shards) - 1) / static_cast<size_t>(shards);
  for (int s = 0; s < shards; ++s) {
    std::string shard;
    std::vector<RecordSpan> spans;
    const size_t begin = std::min(records.size(), static_cast<size_t>(s) * per_shard);
    const size_t end = std::min(records.size(), begin + per_shard);
    for (size_t i = begin; i < end; ++i) {
      const uint64_t offset = shard.size();
      append_record(shard, records[i]);
      spans.push_back({offset, shard.size() - offset});
    }
    const std::string name = shard_name(split, s, shards);
    const std::string path = (fs::path(options.output_dir) / name).string();
    write_file_atomic(path, shard);
    write_file_atomic((idx_dir / name).string(), format_record_index(spans));
    report.files.push_back(path);
  }
}

std::vector<std::string> idx_records(const IdxArray& images, const IdxArray& labels, const std::string& split,
                                     int quality) {
  if (images.shape.size() != 3 || labels.shape.size() != 1 || images.shape[0] != labels.shape[0]) {
    throw std::runtime_error(split + ": IDX images and labels do not match (expected [N,H,W] and [N])");
  }
  const auto& classes = fashion_mnist_classes();
  const int64_t n = images.shape[0], h = images.shape[1], w = images.shape[2];
  std::vector<std::string> records;
  records.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = labels.data[static_cast<size_t>(i)];
    if (label >= static_cast<int64_t>(classes.size())) {
      throw std::runtime_error(split + ": label " + std::to_string(label) + " of image " + std::to_string(i) +
                               " is outside 0.." + std::to_string(classes.size() - 1));
    }
    ImageU8 rgb(static_cast<int>(h), static_cast<int>(w));
    const uint8_t* gray = images.data.data() + i * h * w;
    for (int64_t p = 0; p < h * w; ++p)
      rgb.pixels[3 * p] = rgb.pixels[3 * p + 1] = rgb.pixels[3 * p + 2] = gray[p];
    ImageRecordFields f;
    f.jpeg = encode_jpeg(rgb, quality);
    f.label = label + 1;
    f.height = h;
    f.width = w;
    f.filename = split + "_" + std::to_string(i) + ".jpg";
    f.synset = "class_" + std::to_string(label);
    f.text = classes[static_cast<size_t>(label)];
    records.push_back(encode_imagenet_record(f));
  }
  return records;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

PrepareReport prepare_idx_dataset(const std::string& idx_dir, const ShardWriterOptions& options) {
  if (!fs::is_directory(idx_dir)) throw std::runtime_error("IDX directory '" + idx_dir + "' does not exist");
  fs::create_directories(options.output_dir);
  PrepareReport report;
  struct Split {
    const char* prefix;
    const char* name;
    int shards;
  };
  for (const Split& split : {Split{"train", "train", options.train_shards},
                             Split{"t10k", "validation", options.validation_shards}}) {
    const IdxArray images =
        read_idx_file(find_idx(idx_dir, std::string(split.prefix) + "-images-idx3-ubyte"));
    const IdxArray labels =
        read_idx_file(find_idx(idx_dir, std::string(split.prefix) + "-labels-idx1-ubyte"));
    const auto records = idx_records(images, labels, split.name, options.jpeg_quality);
    write_shards(records, split.name, split.shards, options, report);
    (std::string(split.name) == "train" ? report.train_records : report.validation_records) =
        static_cast<int64_t>(records.size());
  }
  return report;
}

}  // namespace convnets
