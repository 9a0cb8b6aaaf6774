// A random-access view of ImageNet-schema TFRecord shards: every record is addressable by a global index.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "data/imagenet_record.h"
#include "data/mapped_file.h"
#include "data/tfrecord.h"

namespace convnets {

// Sorted shard paths `<data_dir>/<split>-*`. Throws before anything runs when the directory is missing or
// empty, or no file matches (the message says what was looked for and what is there).
std::vector<std::string> find_shards(const std::string& data_dir, const std::string& split);

struct DatasetOptions {
  std::string index_dir{};  // DALI index files; empty or missing files: built on the fly
  int64_t num_classes = 1000;
  bool strict = false;  // bad records are errors instead of counted, logged skips
};

class TFRecordDataset {
 public:
  TFRecordDataset(const std::vector<std::string>& shards, const DatasetOptions& options);

  int64_t size() const { return static_cast<int64_t>(records_.size()); }
  // Validates record `index` (both CRCs, schema, label range) into `out`. A bad record returns false after
  // logging a warning that names file and offset (or throws std::runtime_error when strict).
  bool get(int64_t index, ImageRecord& out) const;
  int64_t skipped() const { return skipped_.load(); }
  // Reports a record that failed later (e.g. its JPEG), with the same warn-or-throw policy.
  void report_bad(int64_t index, const std::string& what) const;

 private:
  struct Entry {
    uint32_t shard;
    RecordSpan span;
  };
  void bad(const RecordError& error) const;
  DatasetOptions options_;
  std::vector<MappedFile> files_;
  std::vector<Entry> records_;
  mutable std::atomic<int64_t> skipped_{0};
};

}  // namespace convnets
