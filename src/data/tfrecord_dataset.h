// A random-access view of ImageNet-schema TFRecord shards: every record is addressable by a global index.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "data/image_source.h"
#include "data/imagenet_record.h"
#include "data/mapped_file.h"
#include "data/tfrecord.h"
#include "util/console.h"

namespace convnets {

// Sorted shard paths `<data_dir>/<split>-*`. Throws before anything runs when the directory is missing or
// empty, or no file matches (the message says what was looked for and what is there).
std::vector<std::string> find_shards(const std::string& data_dir, const std::string& split,
                                     Console& console = stdio_console());

struct DatasetOptions {
  std::string index_dir{};  // DALI index files; empty or missing files: built on the fly
  int64_t num_classes = 1000;
  bool strict = false;         // bad records are errors instead of counted, logged skips
  Console* console = nullptr;  // where bad records are reported, from the shards' opening on (null: stdio)
};

class TFRecordDataset : public ImageSource {
 public:
  TFRecordDataset(const std::vector<std::string>& shards, const DatasetOptions& options);

  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  // Validates record `index` (both CRCs, schema, label range) into `out`, whose image bytes point into the
  // mapped shard. A bad record is reported ("file @ offset: what") and returns false.
  bool get(int64_t index, ImageRecord& out) const;
  bool get(int64_t index, ImageRecord& out, std::string& /*storage*/) const override {
    return get(index, out);
  }
  void report_bad(int64_t index, const std::string& what) const override;

 private:
  struct Entry {
    uint32_t shard;
    RecordSpan span;
  };
  DatasetOptions options_;
  std::vector<MappedFile> files_;
  std::vector<Entry> records_;
};

}  // namespace convnets
