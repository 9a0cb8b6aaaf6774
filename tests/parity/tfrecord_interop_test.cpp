// TFRecords written by TensorFlow are read field for field; ours are read by TensorFlow; JPEG decode vs PIL.
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>

#include "data/jpeg_codec.h"
#include "data/prepare_data.h"
#include "data/tfrecord_dataset.h"
#include "test_support.h"
#include "util/safetensors.h"

namespace convnets {
namespace {}  // namespace

TEST(TensorFlowTFRecords, ReadFieldForField) {
  const std::string dir = testing::fixtures_dir() + "/tfrecords";
  const auto shards = find_shards(dir, "train");
  ASSERT_EQ(shards.size(), 3u);
  TFRecordDataset dataset(shards, {.index_dir = dir + "/idx", .num_classes = 1000, .strict = true});
  ASSERT_EQ(dataset.size(), 12);
  auto want = testing::load_fixture("tfrecords/expected.safetensors");
  int with_boxes = 0;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const std::string key = std::to_string(i / 4) + "." + std::to_string(i % 4);
    ImageRecord r;
    ASSERT_TRUE(dataset.get(i, r)) << key;
    const auto& encoded = want.at("encoded." + key);
    ASSERT_EQ(r.encoded.size(), static_cast<size_t>(encoded.numel())) << key;
    EXPECT_EQ(std::memcmp(r.encoded.data(), encoded.data_ptr(), r.encoded.size()), 0) << key;
    EXPECT_EQ(r.label, want.at("label." + key).item<int64_t>() - 1) << key;
    const auto& boxes = want.at("boxes." + key);
    ASSERT_EQ(static_cast<int64_t>(r.boxes.size()), boxes.size(0)) << key;
    for (size_t b = 0; b < r.boxes.size(); ++b) {
      EXPECT_EQ(r.boxes[b].ymin, boxes[b][0].item<float>());
      EXPECT_EQ(r.boxes[b].xmin, boxes[b][1].item<float>());
      EXPECT_EQ(r.boxes[b].ymax, boxes[b][2].item<float>());
      EXPECT_EQ(r.boxes[b].xmax, boxes[b][3].item<float>());
    }
    with_boxes += !r.boxes.empty();
  }
  EXPECT_EQ(with_boxes, 6);
}

// Full-image decode of RGB, grayscale and CMYK JPEGs equals PIL's convert("RGB") within +-1 per channel.
TEST(TensorFlowTFRecords, JpegDecodeMatchesPil) {
  auto want = testing::load_fixture("tfrecords/expected.safetensors");
  int modes_seen[3] = {0, 0, 0};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 4; ++i) {
      const std::string key = std::to_string(s) + "." + std::to_string(i);
      const auto& encoded = want.at("encoded." + key);
      const ImageU8 img =
          decode_jpeg(std::string_view(static_cast<const char*>(encoded.data_ptr()), encoded.numel()));
      const auto pil = want.at("pil." + key);
      ASSERT_EQ(img.height, pil.size(0)) << key;
      ASSERT_EQ(img.width, pil.size(1)) << key;
      const auto ours = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3},
                                         torch::kUInt8);
      const int max_diff = (ours.to(torch::kInt) - pil.to(torch::kInt)).abs().max().item<int>();
      EXPECT_LE(max_diff, 1) << key << " mode " << want.at("mode." + key).item<int64_t>();
      ++modes_seen[want.at("mode." + key).item<int64_t>()];
    }
  }
  EXPECT_EQ(modes_seen[0], 4);
  EXPECT_EQ(modes_seen[1], 4);
  EXPECT_EQ(modes_seen[2], 4);
}

// prepare_data on the real Fashion-MNIST package; our reader and TensorFlow's both read the result.
TEST(PrepareData, FashionMnistShardsReadByUsAndByTensorFlow) {
  const std::string source = "/usr/share/datasets/fashion-mnist";
  testing::ScratchDir dir;
  const PrepareReport report =
      prepare_idx_dataset(source, {.output_dir = dir.path().string(), .train_shards = 3});
  EXPECT_EQ(report.train_records, 60000);
  EXPECT_EQ(report.validation_records, 10000);
  ASSERT_EQ(report.files.size(), 4u);
  TFRecordDataset train(find_shards(dir.path().string(), "train"),
                        {.index_dir = dir.file("idx"), .num_classes = 10, .strict = true});
  EXPECT_EQ(train.size(), 60000);
  ImageRecord r;
  ASSERT_TRUE(train.get(59999, r));
  const ImageU8 img = decode_jpeg(r.encoded);
  EXPECT_EQ(img.width, 28);
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_tfrecords_with_tf.py " + dir.path().string() + " " + source;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace convnets
