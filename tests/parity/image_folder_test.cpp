// prepare_data on an image folder made by PIL: labels from sorted class names, re-encoding, skips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "data/jpeg_codec.h"
#include "data/prepare_data.h"
#include "data/tfrecord_dataset.h"
#include "test_support.h"
#include "util/safetensors.h"

namespace convnets {

TEST(PrepareData, ImageFolderWithPngGrayscaleCmykAndJunk) {
  testing::ScratchDir dir;
  const std::string root = dir.file("folder"), out = dir.file("shards");
  const std::string cmd =
      testing::python_exe() + " " + testing::tests_source_dir() + "/python/make_image_folder.py " + root;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const PrepareReport report = prepare_image_folder(root, {.output_dir = out, .train_shards = 2});
  EXPECT_EQ(report.train_records, 9);  // 6 RGB + gray + CMYK + PNG
  EXPECT_EQ(report.validation_records, 2);
  EXPECT_EQ(report.reencoded, 3);
  ASSERT_EQ(report.skipped.size(), 2u);  // broken.jpg and notes.txt, each named
  std::string skipped = report.skipped[0] + report.skipped[1];
  EXPECT_NE(skipped.find("broken.jpg"), std::string::npos);
  EXPECT_NE(skipped.find("notes.txt"), std::string::npos);

  TFRecordDataset train(find_shards(out, "train"),
                        {.index_dir = out + "/idx", .num_classes = 2, .strict = true});
  ASSERT_EQ(train.size(), 9);
  int per_class[2] = {0, 0};
  bool saw_png = false;
  const auto expected = load_safetensors(root + "/expected.safetensors").tensors.at(0).second;
  for (int64_t i = 0; i < train.size(); ++i) {
    ImageRecord r;
    ASSERT_TRUE(train.get(i, r));
    ++per_class[r.label];
    EXPECT_EQ(read_jpeg_info(r.encoded).components, 3);  // everything stored as RGB JPEG
    const ImageU8 img = decode_jpeg(r.encoded);
    if (img.width == 24 && img.height == 20) {  // the PNG, now a JPEG
      saw_png = true;
      const auto ours = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {20, 24, 3}, torch::kUInt8);
      EXPECT_LT((ours.to(torch::kFloat) - expected.to(torch::kFloat)).abs().mean().item<double>(), 4.0);
    }
  }
  EXPECT_TRUE(saw_png);
  EXPECT_EQ(per_class[0], 3);  // a_dog: sorted first, label 1 in the file, 0 here
  EXPECT_EQ(per_class[1], 6);
  EXPECT_THROW(prepare_image_folder(dir.file("nothing"), {.output_dir = out}), std::runtime_error);
}

}  // namespace convnets
