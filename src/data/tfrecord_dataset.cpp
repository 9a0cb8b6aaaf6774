#include "data/tfrecord_dataset.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "data/record_index.h"

namespace convnets {
namespace fs = std::filesystem;

std::vector<std::string> find_shards(const std::string& data_dir, const std::string& split,
                                     Console& console) {
  if (data_dir.empty()) throw std::runtime_error("no data directory given");
  if (!fs::is_directory(data_dir))
    throw std::runtime_error("data directory '" + data_dir + "' does not exist");
  std::vector<std::string> shards, others;
  std::set<std::string> shard_sets;  // the "-of-NNNNN" suffixes seen
  for (const auto& entry : fs::directory_iterator(data_dir)) {
    const std::string name = entry.path().filename().string();
    const bool is_shard = name.rfind(split + "-", 0) == 0;
    if (!entry.is_regular_file()) {
      // A FIFO or a directory named like a shard would be read as nothing, silently: refuse it.
      if (is_shard)
        throw std::runtime_error("'" + entry.path().string() + "' is named like a " + split +
                                 " shard but is not a regular file");
      continue;
    }
    (is_shard ? shards : others).push_back(entry.path().string());
    if (const size_t of = name.rfind("-of-"); is_shard && of != std::string::npos)
      shard_sets.insert(name.substr(of));
  }
  if (shard_sets.size() > 1) {
    std::string sets;
    for (const auto& s : shard_sets) sets += (sets.empty() ? "" : ", ") + s;
    console.warning(
        "'" + data_dir + "' holds " + split + " shards of " + std::to_string(shard_sets.size()) +
        " different sets (" + sets +
        "): a prepare_data run over an older output? Every file is read; delete the stale set if it "
        "is one");
  }
  if (shards.empty()) {
    throw std::runtime_error("no '" + split + "-*' TFRecord shards in '" + data_dir + "' (" +
                             (others.empty() ? std::string("the directory is empty")
                                             : std::to_string(others.size()) + " other files") +
                             "); convert data with `convnets prepare_data`");
  }
  std::sort(shards.begin(), shards.end());
  return shards;
}

TFRecordDataset::TFRecordDataset(const std::vector<std::string>& shards, const DatasetOptions& options)
    : ImageSource(options.strict), options_(options) {
  if (options.console) set_console(*options.console);
  if (shards.empty()) throw std::runtime_error("TFRecordDataset: no shards");
  files_.reserve(shards.size());
  for (size_t s = 0; s < shards.size(); ++s) {
    files_.emplace_back(shards[s]);
    RecordError error{shards[s], 0, ""};
    const auto spans = shard_spans(shards[s], files_.back().bytes(), options.index_dir, &error);
    if (!error.what.empty()) bad(-1, error.describe());
    for (const auto& span : spans) records_.push_back({static_cast<uint32_t>(s), span});
  }
  if (records_.empty())
    throw std::runtime_error("no readable records in " + std::to_string(shards.size()) + " shards");
}

void TFRecordDataset::report_bad(int64_t index, const std::string& what) const {
  const Entry& e = records_.at(static_cast<size_t>(index));
  bad(index, RecordError{files_[e.shard].path(), e.span.offset, what}.describe());
}

bool TFRecordDataset::get(int64_t index, ImageRecord& out) const {
  const Entry& e = records_.at(static_cast<size_t>(index));
  const MappedFile& file = files_[e.shard];
  std::string_view data;
  RecordError error;
  if (!read_record(file.bytes(), e.span, file.path(), data, error)) {
    bad(index, error.describe());
    return false;
  }
  std::string why;
  if (!decode_imagenet_record(data, options_.num_classes, out, why)) {
    bad(index, RecordError{file.path(), e.span.offset, why}.describe());
    return false;
  }
  return true;
}

}  // namespace convnets
