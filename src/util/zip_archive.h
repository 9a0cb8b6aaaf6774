// Minimal zip container for PyTorch's serialization format: stored (uncompressed) entries only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace convnets {

// Reads the central directory of an in-memory zip (zip64 included). Entries must be stored; their CRC-32
// is verified when read. Every malformed field throws std::runtime_error prefixed by `context` (a file name).
class ZipReader {
 public:
  ZipReader(std::string_view bytes, std::string context);
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const;
  std::string_view read(const std::string& name) const;

 private:
  struct Entry {
    uint64_t data_offset, size;
    uint32_t crc;
  };
  [[noreturn]] void fail(const std::string& what) const;
  std::string_view bytes_;
  std::string context_;
  std::vector<std::string> names_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> entry, built once (files hold 100k+ tensors)
};

// Builds a zip of stored entries whose data start 64-byte aligned (as PyTorch writes them, so readers may
// mmap).
class ZipWriter {
 public:
  void add(const std::string& name, std::string_view data);
  std::string finish();  // the whole archive; total size must stay below 4 GiB (no zip64 writing)

 private:
  struct Entry {
    std::string name;
    uint64_t header_offset, size;
    uint32_t crc;
  };
  std::string out_;
  std::vector<Entry> entries_;
};

}  // namespace convnets
