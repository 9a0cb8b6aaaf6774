// TFRecord framing: [u64 length][u32 masked crc32c(length)][data][u32 masked crc32c(data)], little-endian.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convnets {

// Where one record sits in its file (the same two numbers as a DALI tfrecord2idx line).
struct RecordSpan {
  uint64_t offset;  // of the length field
  uint64_t size;    // whole framed record: 16 + data length
};

// What went wrong with one record; `offset` is the byte offset of its framing in `file`.
struct RecordError {
  std::string file;
  uint64_t offset;
  std::string what;
  std::string describe() const { return file + " @ " + std::to_string(offset) + ": " + what; }
};

// Validates the framed record at `span` inside `file_bytes` (both CRCs) and returns a view of its data;
// on failure returns false and fills `error`.
bool read_record(std::string_view file_bytes, const RecordSpan& span, const std::string& file,
                 std::string_view& data, RecordError& error);

// Walks the framing of a whole file (checking only the length CRC, as tfrecord2idx does) and returns every
// record's span. A truncated last record or a bad length CRC ends the walk with `error` set (the file cannot
// be resynchronised past a bad length).
std::vector<RecordSpan> scan_records(std::string_view file_bytes, const std::string& file,
                                     RecordError* error);

// Appends one framed record to `out`.
void append_record(std::string& out, std::string_view data);

}  // namespace convnets
