#include "data/tfrecord.h"

#include <gtest/gtest.h>

#include "data/record_index.h"
#include "test_support.h"
#include "util/file_io.h"

namespace convnets {

namespace {
std::string three_records() {
  std::string file;
  append_record(file, "first");
  append_record(file, std::string(1000, 'x'));
  append_record(file, "");
  return file;
}
}  // namespace

TEST(TFRecord, ScanAndReadBack) {
  const std::string file = three_records();
  RecordError error;
  const auto spans = scan_records(file, "f", &error);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_TRUE(error.what.empty());
  EXPECT_EQ(spans[0].offset, 0u);
  EXPECT_EQ(spans[0].size, 16u + 5);
  EXPECT_EQ(spans[1].offset, 21u);
  std::string_view data;
  ASSERT_TRUE(read_record(file, spans[1], "f", data, error));
  EXPECT_EQ(data, std::string(1000, 'x'));
  ASSERT_TRUE(read_record(file, spans[2], "f", data, error));
  EXPECT_EQ(data, "");
}

TEST(TFRecord, DataCrcMismatchNamesFileAndOffset) {
  std::string file = three_records();
  file[21 + 12 + 10] ^= 1;  // inside the second record's data
  RecordError error;
  const auto spans = scan_records(file, "train-00000", &error);
  ASSERT_EQ(spans.size(), 3u);  // framing is intact
  std::string_view data;
  EXPECT_TRUE(read_record(file, spans[0], "train-00000", data, error));
  EXPECT_FALSE(read_record(file, spans[1], "train-00000", data, error));
  EXPECT_EQ(error.describe(), "train-00000 @ 21: data CRC mismatch");
}

TEST(TFRecord, TruncatedShardKeepsTheCompleteRecords) {
  const std::string file = three_records();
  RecordError error;
  const auto spans = scan_records(std::string_view(file).substr(0, file.size() - 3), "cut", &error);
  EXPECT_EQ(spans.size(), 2u);
  EXPECT_EQ(error.offset, 21u + 1016);
  EXPECT_NE(error.what.find("truncated"), std::string::npos);
  std::string_view data;
  EXPECT_FALSE(read_record(std::string_view(file).substr(0, 30), spans[1], "cut", data, error));
}

TEST(TFRecord, IndexFilesRoundTripAndStaleOnesAreRebuilt) {
  const std::string file = three_records();
  const auto spans = scan_records(file, "f", nullptr);
  const std::string text = format_record_index(spans);
  EXPECT_EQ(text, "0 21\n21 1016\n1037 16\n");
  const auto parsed = parse_record_index(text, "idx");
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[2].offset, 1037u);
  EXPECT_THROW(parse_record_index("0 21\nbanana\n", "idx"), std::runtime_error);

  testing::ScratchDir dir;
  std::filesystem::create_directories(dir.path() / "idx");
  write_file_atomic(dir.file("train-0"), file);
  write_file_atomic(dir.file("idx/train-0"), "0 21\n21 1016\n");  // stale: misses a record
  const auto rebuilt = shard_spans(dir.file("train-0"), file, dir.file("idx"), nullptr);
  EXPECT_EQ(rebuilt.size(), 3u);
}

}  // namespace convnets
