// prepare_data on an image folder made by PIL: labels from sorted class names, re-encoding, skips; PNG
// through the loader from image folders and TFRecords.
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/image_folder_dataset.h"
#include "data/imagenet_record.h"
#include "data/jpeg_codec.h"
#include "data/loader.h"
#include "data/prepare_data.h"
#include "data/tfrecord.h"
#include "data/tfrecord_dataset.h"
#include "test_support.h"
#include "util/file_io.h"
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

namespace {
std::string_view bytes_of(const torch::Tensor& t) {
  return {static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel())};
}
}  // namespace

// PNGs of every colour type through the loader, from an image folder and from TFRecords holding PNG bytes (as
// DALI reads them): decoded losslessly, each eval batch row equals PIL's crop + resize of PIL's decode.
TEST(Loader, PngFromImageFoldersAndTfRecordsEqualsPil) {
  const auto fixtures = testing::load_fixture("transforms/expected.safetensors");
  testing::ScratchDir dir;
  std::vector<std::string> names;
  std::string shard;
  for (const auto& [key, t] : fixtures) {
    if (key.rfind("png.", 0) != 0 || key.compare(key.size() - 6, 6, ".bytes") != 0) continue;
    names.push_back(key.substr(0, key.size() - 6));
  }
  std::sort(names.begin(), names.end());
  std::filesystem::create_directories(dir.path() / "folder/val/only_class");
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string_view png = bytes_of(fixtures.at(names[i] + ".bytes"));
    char file[64];
    std::snprintf(file, sizeof(file), "%03zu.png", i);  // sorted like `names`
    write_file_atomic((dir.path() / "folder/val/only_class" / file).string(), std::string(png));
    append_record(shard, encode_imagenet_record({.jpeg = std::string(png), .label = 1}));
  }
  write_file_atomic(dir.file("validation-00000-of-00001"), shard);
  LoaderOptions lo;
  lo.batch_size = static_cast<int64_t>(names.size());
  lo.workers = 2;
  lo.train = false;
  lo.eval_transform = {
      .size = 64, .interpolation = Interpolation::kBicubic, .crop = EvalCrop::kCenterFractionThenResize};
  std::vector<std::shared_ptr<const ImageSource>> sources{
      std::make_shared<ImageFolderDataset>((dir.path() / "folder/val").string(), /*strict=*/true),
      std::make_shared<TFRecordDataset>(find_shards(dir.path().string(), "validation"),
                                        DatasetOptions{.num_classes = 1, .strict = true})};
  for (const auto& source : sources) {
    Loader loader(source, lo);
    loader.start_epoch(0);
    const std::optional<Batch> batch = loader.next();
    ASSERT_TRUE(batch);
    ASSERT_EQ(batch->images.size(0), static_cast<int64_t>(names.size()));
    for (size_t i = 0; i < names.size(); ++i) {
      const torch::Tensor& pil = fixtures.at(names[i] + ".effnet64");
      EXPECT_TRUE(torch::equal(batch->images[static_cast<int64_t>(i)], pil)) << names[i];
    }
  }
}

}  // namespace convnets
