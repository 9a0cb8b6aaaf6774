#include "data/tfrecord.h"

#include <cstring>

#include "util/crc32.h"

namespace convnets {
namespace {

uint64_t load_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
uint32_t load_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store(std::string& out, uint64_t v, int n) {
  for (int k = 0; k < n; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}

}  // namespace

bool read_record(std::string_view bytes, const RecordSpan& span, const std::string& file,
                 std::string_view& data, RecordError& error) {
  auto fail = [&](const std::string& what) {
    error = {file, span.offset, what};
    return false;
  };
  if (span.offset > bytes.size() || span.size < 16 || span.size > bytes.size() - span.offset) {
    return fail("record of " + std::to_string(span.size) + " bytes runs past the end of the file (" +
                std::to_string(bytes.size()) + " bytes); truncated shard or stale index?");
  }
  const char* p = bytes.data() + span.offset;
  const uint64_t length = load_u64(p);
  if (mask_crc32c(crc32c(p, 8)) != load_u32(p + 8)) return fail("length CRC mismatch");
  if (length != span.size - 16) {
    return fail("record length " + std::to_string(length) + " disagrees with the index (" +
                std::to_string(span.size - 16) + ")");
  }
  if (mask_crc32c(crc32c(p + 12, length)) != load_u32(p + 12 + length)) return fail("data CRC mismatch");
  data = std::string_view(p + 12, length);
  return true;
}

std::vector<RecordSpan> scan_records(std::string_view bytes, const std::string& file, RecordError* error) {
  std::vector<RecordSpan> spans;
  uint64_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 12) {
      if (error) *error = {file, pos, "truncated record header"};
      break;
    }
    const char* p = bytes.data() + pos;
    if (mask_crc32c(crc32c(p, 8)) != load_u32(p + 8)) {
      if (error) *error = {file, pos, "length CRC mismatch; the rest of the file is skipped"};
      break;
    }
    const uint64_t length = load_u64(p);
    if (length > bytes.size() - pos - 12 || bytes.size() - pos - 12 - length < 4) {
      if (error) *error = {file, pos, "record of " + std::to_string(length) + " bytes is truncated"};
      break;
    }
    spans.push_back({pos, length + 16});
    pos += length + 16;
  }
  return spans;
}

void append_record(std::string& out, std::string_view data) {
  std::string header;
  store(header, data.size(), 8);
  out += header;
  store(out, mask_crc32c(crc32c(header.data(), 8)), 4);
  out.append(data);
  store(out, mask_crc32c(crc32c(data.data(), data.size())), 4);
}

}  // namespace convnets
