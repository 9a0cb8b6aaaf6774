#include "data/record_index.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "util/file_io.h"

namespace convnets {

std::vector<RecordSpan> parse_record_index(std::string_view text, const std::string& context) {
  std::vector<RecordSpan> spans;
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::istringstream in(line);
    long long offset = -1, size = -1;
    std::string rest;
    if (!(in >> offset >> size) || (in >> rest) || offset < 0 || size < 16) {
      throw std::runtime_error(context + ":" + std::to_string(line_no) +
                               ": expected '<offset> <size>', got '" + line + "'");
    }
    spans.push_back({static_cast<uint64_t>(offset), static_cast<uint64_t>(size)});
  }
  return spans;
}

std::string format_record_index(const std::vector<RecordSpan>& spans) {
  std::string out;
  for (const auto& s : spans) out += std::to_string(s.offset) + " " + std::to_string(s.size) + "\n";
  return out;
}

std::vector<RecordSpan> shard_spans(const std::string& shard_path, std::string_view shard_bytes,
                                    const std::string& index_dir, RecordError* error) {
  if (!index_dir.empty()) {
    const auto index_path = std::filesystem::path(index_dir) / std::filesystem::path(shard_path).filename();
    if (std::filesystem::exists(index_path)) {
      auto spans = parse_record_index(read_file(index_path.string()), index_path.string());
      // An index that does not tile the shard exactly is stale: rebuild it from the framing instead.
      uint64_t expected = 0;
      bool consistent = true;
      for (const auto& s : spans) {
        consistent = consistent && s.offset == expected;
        expected = s.offset + s.size;
      }
      if (consistent && expected == shard_bytes.size()) return spans;
    }
  }
  return scan_records(shard_bytes, shard_path, error);
}

}  // namespace convnets
