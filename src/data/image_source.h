// What the loader reads from: an indexable set of labelled encoded images (TFRecord shards or an image
// folder), with one bad-data policy: a bad item is a warning naming where it is, counted and skipped, or an
// error when strict.
#pragma once
#include <mutex>
#include <set>
#include <string>

#include "data/imagenet_record.h"
#include "util/console.h"

namespace convnets {

class ImageSource {
 public:
  explicit ImageSource(bool strict) : strict_(strict) {}
  virtual ~ImageSource() = default;

  virtual int64_t size() const = 0;
  // Fills `out` for item `index`; `out.encoded` may point into `storage`. False (after report) when bad.
  virtual bool get(int64_t index, ImageRecord& out, std::string& storage) const = 0;
  // Reports item `index` as bad for a reason found later (e.g. its JPEG does not decode).
  virtual void report_bad(int64_t index, const std::string& what) const = 0;

  // A new pass over the data (the loader calls this at every epoch): bad records are reported again once.
  void new_epoch() const;
  // Distinct bad records met since new_epoch(), plus the damaged-shard findings made when the data was
  // opened (a truncated tail record: not addressable, so missing from every pass).
  int64_t skipped() const;
  // Where bad records are reported (default: the process's stdio console).
  void set_console(Console& console) { console_ = &console; }

 protected:
  // Warns once per pass for item `index` (-1: not an item, e.g. a damaged shard index), one whole line on
  // the console, or throws std::runtime_error when strict; `where` names the file and position.
  void bad(int64_t index, const std::string& where) const;

 private:
  bool strict_;
  Console* console_ = &stdio_console();
  mutable std::mutex mutex_;
  mutable std::set<int64_t> reported_;
  mutable int64_t other_problems_ = 0;  // findings not tied to an item (index -1)
};

}  // namespace convnets
