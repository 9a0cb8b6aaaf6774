// DALI tfrecord2idx index files: one "offset size" text line per record.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "data/tfrecord.h"

namespace convnets {

// Parses an index; throws std::runtime_error naming the file and line on malformed content.
std::vector<RecordSpan> parse_record_index(std::string_view text, const std::string& context);
std::string format_record_index(const std::vector<RecordSpan>& spans);

// The spans of one shard: from `<index_dir>/<shard basename>` when that exists and agrees with the shard's
// size, otherwise by scanning the framing (as tfrecord2idx does). Framing damage found by the scan is
// reported in `error` (records before it are kept).
std::vector<RecordSpan> shard_spans(const std::string& shard_path, std::string_view shard_bytes,
                                    const std::string& index_dir, RecordError* error);

}  // namespace convnets
