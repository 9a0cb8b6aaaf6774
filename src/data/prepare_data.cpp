#include "data/prepare_data.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "data/idx_file.h"
#include "data/image_folder_dataset.h"
#include "data/imagenet_record.h"
#include "data/jpeg_codec.h"
#include "data/png_codec.h"
#include "data/record_index.h"
#include "data/tfrecord.h"
#include "util/file_io.h"
#include "util/random.h"

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

// Streams records into `shards` shards of ceil(total / shards) records, each written atomically with its
// index file as soon as it is full.
class ShardWriter {
 public:
  ShardWriter(const ShardWriterOptions& options, std::string split, int shards, int64_t total,
              PrepareReport& report)
      : options_(options), split_(std::move(split)), shards_(shards), report_(report) {
    if (shards < 1) throw std::invalid_argument("shard count for " + split_ + " must be >= 1");
    per_shard_ = std::max<int64_t>(1, (total + shards - 1) / shards);
    fs::create_directories(fs::path(options.output_dir) / "idx");
  }
  void add(std::string_view record) {
    const uint64_t offset = shard_.size();
    append_record(shard_, record);
    spans_.push_back({offset, shard_.size() - offset});
    if (static_cast<int64_t>(spans_.size()) == per_shard_) flush();
  }
  // Writes the last partial shard and any remaining empty ones, so that names say "-of-<shards>" truly.
  void finish() {
    while (index_ < shards_) flush();
  }

 private:
  void flush() {
    const std::string name = shard_name(split_, index_++, shards_);
    const std::string path = (fs::path(options_.output_dir) / name).string();
    write_file_atomic(path, shard_);
    write_file_atomic((fs::path(options_.output_dir) / "idx" / name).string(), format_record_index(spans_));
    report_.files.push_back(path);
    shard_.clear();
    spans_.clear();
  }
  const ShardWriterOptions& options_;
  std::string split_;
  int shards_, index_ = 0;
  int64_t per_shard_;
  PrepareReport& report_;
  std::string shard_;
  std::vector<RecordSpan> spans_;
};

void write_shards(const std::vector<std::string>& records, const std::string& split, int shards,
                  const ShardWriterOptions& options, PrepareReport& report) {
  ShardWriter writer(options, split, shards, static_cast<int64_t>(records.size()), report);
  for (const auto& r : records) writer.add(r);
  writer.finish();
}

std::vector<std::string> idx_records(const IdxArray& images, const IdxArray& labels, const std::string& split,
                                     int quality, const std::vector<std::string>& classes) {
  if (images.shape.size() != 3 || labels.shape.size() != 1 || images.shape[0] != labels.shape[0]) {
    throw std::runtime_error(split + ": IDX images and labels do not match (expected [N,H,W] and [N])");
  }
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

namespace {

struct FolderImage {
  std::string path;
  std::string relative;
  int64_t label;  // 0-based
};

// Turns a file into an ImageNet-schema record; false with `why` when it is not a readable image.
bool folder_record(const FolderImage& f, const std::vector<std::string>& classes, int quality,
                   std::string& record, bool& reencoded, std::string& why) {
  std::string bytes = read_file(f.path);
  ImageRecordFields fields;
  try {
    if (is_png(bytes)) {
      const ImageU8 img = decode_png(bytes);
      fields.jpeg = encode_jpeg(img, quality);
      fields.height = img.height;
      fields.width = img.width;
      reencoded = true;
    } else {
      const JpegInfo info = read_jpeg_info(bytes);
      const ImageU8 img = decode_jpeg(bytes);  // validates the whole stream
      reencoded = info.components != 3;
      fields.jpeg = reencoded ? encode_jpeg(img, quality) : std::move(bytes);
      fields.height = img.height;
      fields.width = img.width;
    }
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  fields.label = f.label + 1;
  fields.synset = classes[static_cast<size_t>(f.label)];
  fields.text = classes[static_cast<size_t>(f.label)];
  fields.filename = f.relative;
  record = encode_imagenet_record(fields);
  return true;
}

void write_class_names(const std::string& dir, const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text.append(n).append("\n");
  write_file_atomic((fs::path(dir) / "classes.txt").string(), text);
}

}  // namespace

namespace {

// Shards of an earlier run with another shard count would be read together with the new ones.
void check_output_dir(const ShardWriterOptions& options) {
  if (!fs::is_directory(options.output_dir)) return;
  std::set<std::string> ours;
  for (int i = 0; i < options.train_shards; ++i) ours.insert(shard_name("train", i, options.train_shards));
  for (int i = 0; i < options.validation_shards; ++i)
    ours.insert(shard_name("validation", i, options.validation_shards));
  std::vector<fs::path> foreign;
  for (const auto& e : fs::directory_iterator(options.output_dir)) {
    const std::string name = e.path().filename().string();
    if ((name.rfind("train-", 0) == 0 || name.rfind("validation-", 0) == 0) && !ours.count(name))
      foreign.push_back(e.path());
  }
  if (foreign.empty()) return;
  if (!options.overwrite) {
    throw std::runtime_error(
        "output '" + options.output_dir + "' already holds " + std::to_string(foreign.size()) +
        " shard(s) of another set (e.g. " + foreign.front().filename().string() +
        "); training would read both. Use another --output, or --overwrite to remove them");
  }
  for (const auto& f : foreign) {
    fs::remove_all(f);
    fs::remove(fs::path(options.output_dir) / "idx" / f.filename());  // its index, same name
  }
}

}  // namespace

PrepareReport prepare_image_folder(const std::string& root, const ShardWriterOptions& options) {
  const fs::path train_dir = fs::path(root) / "train";
  if (!fs::is_directory(train_dir)) {
    throw std::runtime_error("image folder '" + root +
                             "' has no train/ directory (expected <root>/train/<class>/<image>)");
  }
  const std::vector<std::string> classes = class_directories(train_dir.string());
  if (classes.empty()) throw std::runtime_error("'" + train_dir.string() + "' has no class directories");
  check_output_dir(options);
  fs::create_directories(options.output_dir);
  PrepareReport report;
  report.classes = classes;
  write_class_names(options.output_dir, classes);
  for (const std::string split : {"train", "val"}) {
    fs::path dir = fs::path(root) / split;
    if (split == "val" && !fs::is_directory(dir)) dir = fs::path(root) / "validation";
    if (split == "val" && !fs::is_directory(dir)) continue;
    std::vector<FolderImage> files;
    for (const auto& c : fs::directory_iterator(dir)) {
      if (!c.is_directory()) continue;
      const std::string name = c.path().filename().string();
      const auto it = std::find(classes.begin(), classes.end(), name);
      if (it == classes.end())
        throw std::runtime_error("class '" + name + "' of " + dir.string() + " is not in train/");
      for (const auto& f : fs::recursive_directory_iterator(c.path())) {
        if (!f.is_regular_file()) continue;
        if (!is_image_file(f.path().string())) {
          report.skipped.push_back(f.path().string() + ": not a .jpg/.jpeg/.png file");
          continue;
        }
        files.push_back({f.path().string(), fs::relative(f.path(), root).string(), it - classes.begin()});
      }
    }
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    if (split == "train") {  // fixed-seed shuffle, as build_imagenet_data.py shuffles with seed 12345
      Rng rng(12345);
      for (int64_t i = static_cast<int64_t>(files.size()) - 1; i > 0; --i) {
        std::swap(files[static_cast<size_t>(i)], files[static_cast<size_t>(rng.uniform_int(i + 1))]);
      }
    }
    const std::string name = split == "train" ? "train" : "validation";
    ShardWriter writer(options, name, split == "train" ? options.train_shards : options.validation_shards,
                       static_cast<int64_t>(files.size()), report);
    int64_t written = 0;
    for (const auto& f : files) {
      std::string record, why;
      bool reencoded = false;
      if (!folder_record(f, classes, options.jpeg_quality, record, reencoded, why)) {
        report.skipped.push_back(f.path + ": " + why);
        continue;
      }
      writer.add(record);
      report.reencoded += reencoded;
      ++written;
    }
    writer.finish();
    (split == "train" ? report.train_records : report.validation_records) = written;
  }
  return report;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

PrepareReport prepare_idx_dataset(const std::string& idx_dir, const ShardWriterOptions& options) {
  if (!fs::is_directory(idx_dir)) throw std::runtime_error("IDX directory '" + idx_dir + "' does not exist");
  check_output_dir(options);
  fs::create_directories(options.output_dir);
  PrepareReport report;
  report.classes = options.class_names.empty() ? fashion_mnist_classes() : options.class_names;
  write_class_names(options.output_dir, report.classes);
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
    const auto records = idx_records(images, labels, split.name, options.jpeg_quality, report.classes);
    write_shards(records, split.name, split.shards, options, report);
    (std::string(split.name) == "train" ? report.train_records : report.validation_records) =
        static_cast<int64_t>(records.size());
  }
  return report;
}

}  // namespace convnets
