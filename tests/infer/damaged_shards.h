// TFRecord shards with the usual damage next to good records, for the reader modes' tests on every inference
// form (tests/infer/damaged_data_test.cpp on the CPU, tests/gpu on CUDA): a label out of range, a label
// missing, empty and garbage image bytes, a truncated JPEG, a flipped bit, a truncated record.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/imagenet_record.h"
#include "data/tfrecord.h"
#include "util/file_io.h"

namespace convnets::testing {

// What write_damaged_shards made, read 4 to a batch in order:
//   damaged/validation-0: [G  L  G  E] [Ga Tj N  F]      (2 good; then a batch of 4 bad)
//   damaged/validation-1: [G  G  G  G] [G  G  G  G] [Ga L] + a truncated record (8 good; the last batch all
//   bad) good/validation-0:    the 10 good records alone, in the same order all_bad/validation-0: 6 bad
//   records
// and in each directory a train shard of the 10 good records.
struct DamagedShards {
  static constexpr int64_t kGood = 10, kBad = 9;  // 8 bad records addressable, the truncated one not
  static constexpr int64_t kAllBad = 6;
  static constexpr int64_t kBatch = 4;
};

// `folder`: an image folder of 3 classes x 6 images (testing::write_image_folder); its val images become the
// records (labels 1..3). Writes <root>/damaged, <root>/good and <root>/all_bad.
inline void write_damaged_shards(const std::filesystem::path& folder, const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  auto jpeg_of = [&](int c, int i) {
    return read_file(
        (folder / "val" / ("class" + std::to_string(c)) / (std::to_string(i) + ".jpg")).string());
  };
  auto record = [](const std::string& bytes, int64_t label) {
    ImageRecordFields f;
    f.jpeg = bytes;
    f.label = label;
    return encode_imagenet_record(f);
  };
  std::vector<std::string> good;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 6; ++i) good.push_back(record(jpeg_of(c, i), c + 1));
  const std::string jpeg = jpeg_of(1, 0);
  const std::string label_out_of_range = record(jpeg, 4);  // 3 classes
  const std::string label_missing = ExampleBuilder().add_bytes("image/encoded", jpeg).serialize();
  const std::string empty_bytes = record("", 1);
  const std::string garbage_bytes = record("this is not an image, it only sits where one belongs", 2);
  const std::string truncated_jpeg = record(jpeg.substr(0, jpeg.size() / 2), 2);

  std::string shard0, shard1, clean, all_bad;
  for (const std::string* r :
       std::vector<const std::string*>{&good[0], &label_out_of_range, &good[7], &empty_bytes, &garbage_bytes,
                                       &truncated_jpeg, &label_missing})
    append_record(shard0, *r);
  const size_t flipped_at = shard0.size();
  append_record(shard0, good[13]);
  shard0[flipped_at + 16 + 40] ^= 0x04;  // one bit of the record's data: its CRC no longer matches
  const std::vector<size_t> later = {1, 2, 8, 9, 14, 15, 16, 17};
  for (size_t g : later) append_record(shard1, good[g]);
  append_record(shard1, garbage_bytes);
  append_record(shard1, label_out_of_range);
  std::string tail;
  append_record(tail, good[3]);
  shard1 += tail.substr(0, tail.size() - 7);
  for (size_t g : {size_t{0}, size_t{7}}) append_record(clean, good[g]);
  for (size_t g : later) append_record(clean, good[g]);
  for (const std::string* r :
       std::vector<const std::string*>{&label_out_of_range, &label_missing, &empty_bytes, &garbage_bytes,
                                       &truncated_jpeg, &garbage_bytes})
    append_record(all_bad, *r);
  for (const char* d : {"damaged", "good", "all_bad"}) {
    fs::create_directories(root / d);
    write_file_atomic((root / d / "train-00000-of-00001").string(), clean);
  }
  write_file_atomic((root / "damaged" / "validation-00000-of-00002").string(), shard0);
  write_file_atomic((root / "damaged" / "validation-00001-of-00002").string(), shard1);
  write_file_atomic((root / "good" / "validation-00000-of-00001").string(), clean);
  write_file_atomic((root / "all_bad" / "validation-00000-of-00001").string(), all_bad);
}

}  // namespace convnets::testing
