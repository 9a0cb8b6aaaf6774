#include "data/tfrecord_dataset.h"

#include <gtest/gtest.h>

#include "data/example.h"
#include "data/imagenet_record.h"
#include "data/tfrecord.h"
#include "test_support.h"
#include "util/file_io.h"

namespace convnets {
namespace {

std::string record_with_label(int64_t label) {
  ImageRecordFields f;
  f.jpeg = "jpeg-" + std::to_string(label);
  f.label = label;
  return encode_imagenet_record(f);
}

}  // namespace

TEST(TFRecordDataset, FindShardsErrorsBeforeAnythingRuns) {
  testing::ScratchDir dir;
  EXPECT_THROW(find_shards(dir.file("missing"), "train"), std::runtime_error);
  try {
    find_shards(dir.path().string(), "train");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("directory is empty"), std::string::npos) << e.what();
  }
  write_file_atomic(dir.file("validation-00000-of-00001"), "");
  write_file_atomic(dir.file("train-00001-of-00002"), "");
  write_file_atomic(dir.file("train-00000-of-00002"), "");
  const auto shards = find_shards(dir.path().string(), "train");
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_NE(shards[0].find("train-00000"), std::string::npos);
  EXPECT_THROW(find_shards(dir.path().string(), "test"), std::runtime_error);
}

// A CRC error, a missing label, a label out of range and a truncated tail: each is skipped with a warning
// naming file and offset and counted; --strict turns the first into an error.
TEST(TFRecordDataset, BadRecordsAreCountedAndSkippedOrFatalWhenStrict) {
  testing::ScratchDir dir;
  std::string shard;
  append_record(shard, record_with_label(1));
  const size_t corrupt_at = shard.size();
  append_record(shard, record_with_label(2));
  shard[corrupt_at + 20] ^= 0x55;                                                      // data CRC now wrong
  append_record(shard, ExampleBuilder().add_bytes("image/encoded", "x").serialize());  // no label
  append_record(shard, record_with_label(11));                                         // > num_classes
  append_record(shard, record_with_label(10));
  append_record(shard, record_with_label(3));
  write_file_atomic(dir.file("train-0"), shard.substr(0, shard.size() - 5));  // truncated last record

  TFRecordDataset dataset({dir.file("train-0")}, {.num_classes = 10});
  EXPECT_EQ(dataset.size(), 5);  // the truncated record is not addressable
  EXPECT_EQ(dataset.skipped(), 1);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    ImageRecord r;
    if (dataset.get(i, r)) labels.push_back(r.label);
  }
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 9}));
  EXPECT_EQ(dataset.skipped(), 4);
  // A new pass forgets the records it met, not the truncated one, which no pass can read.
  dataset.new_epoch();
  EXPECT_EQ(dataset.skipped(), 1);

  try {
    TFRecordDataset strict({dir.file("train-0")}, {.num_classes = 10, .strict = true});
    FAIL() << "strict mode accepted a truncated shard";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("train-0 @ "), std::string::npos) << e.what();
  }
}

}  // namespace convnets
