#include "data/loader.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <map>
#include <set>
#include <sstream>

#include "data/image_folder_dataset.h"
#include "data/imagenet_record.h"
#include "data/jpeg_codec.h"
#include "data/tfrecord.h"
#include "data/tfrecord_dataset.h"
#include "test_support.h"
#include "util/file_io.h"

namespace convnets {
namespace {

// 37 JPEGs of assorted sizes in two shards; label i % 10 (stored 1-based); record `corrupt` has a bad JPEG.
std::shared_ptr<TFRecordDataset> make_dataset(const testing::ScratchDir& dir, int corrupt = -1) {
  std::string shards[2];
  for (int i = 0; i < 37; ++i) {
    ImageU8 img(40 + i % 7 * 9, 50 + i % 5 * 11);
    for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = static_cast<uint8_t>((p * (i + 3)) % 251);
    ImageRecordFields f;
    f.jpeg = encode_jpeg(img, 90);
    if (i == corrupt) f.jpeg = "this is not a JPEG";
    f.label = i % 10 + 1;
    append_record(shards[i % 2], encode_imagenet_record(f));
  }
  write_file_atomic(dir.file("train-00000-of-00002"), shards[0]);
  write_file_atomic(dir.file("train-00001-of-00002"), shards[1]);
  return std::make_shared<TFRecordDataset>(find_shards(dir.path().string(), "train"),
                                           DatasetOptions{.num_classes = 10});
}

LoaderOptions small(bool train, int workers) {
  LoaderOptions o;
  o.batch_size = 8;
  o.workers = workers;
  o.train = train;
  o.seed = 42;
  o.train_transform.size = 32;
  o.eval_transform.size = 32;
  o.eval_transform.resize_shorter = 36;
  return o;
}

std::vector<Batch> epoch(Loader& loader, int64_t e, int64_t first = 0) {
  loader.start_epoch(e, first);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(*b);
  return out;
}

}  // namespace

TEST(Loader, EvalSeesEveryRecordOnceWithAPartialLastBatch) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir);
  Loader loader(dataset, small(false, 3));
  EXPECT_EQ(loader.batches_per_epoch(), 5);
  const auto batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 5u);
  EXPECT_EQ(batches.back().images.size(0), 37 - 32);
  EXPECT_EQ(batches[0].images.sizes(), (std::vector<int64_t>{8, 32, 32, 3}));
  std::vector<int64_t> counts(10, 0);
  for (const auto& b : batches) {
    for (int64_t i = 0; i < b.labels.size(0); ++i) ++counts[b.labels[i].item<int64_t>()];
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{4, 4, 4, 4, 4, 4, 4, 3, 3, 3}));
}

TEST(Loader, DeterministicAcrossWorkerCountsAndReshuffledPerEpoch) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir);
  Loader one(dataset, small(true, 1)), four(dataset, small(true, 4));
  EXPECT_EQ(one.batches_per_epoch(), 4);  // drop_last: 37 / 8
  const auto a = epoch(one, 3), b = epoch(four, 3);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << i;
    EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels)) << i;
  }
  const auto c = epoch(one, 4);
  EXPECT_FALSE(torch::equal(a[0].labels, c[0].labels) && torch::equal(a[0].images, c[0].images));
}

TEST(Loader, ResumedEpochContinuesWithTheSameBatches) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir);
  Loader loader(dataset, small(true, 2));
  const auto full = epoch(loader, 7);
  const auto resumed = epoch(loader, 7, 2);
  ASSERT_EQ(resumed.size(), full.size() - 2);
  for (size_t i = 0; i < resumed.size(); ++i) {
    EXPECT_EQ(resumed[i].index, full[i + 2].index);
    EXPECT_TRUE(torch::equal(resumed[i].images, full[i + 2].images));
  }
  // Restarting mid-epoch discards in-flight work of the old one.
  loader.start_epoch(1);
  ASSERT_TRUE(loader.next().has_value());
  const auto again = epoch(loader, 7);
  EXPECT_TRUE(torch::equal(again[0].images, full[0].images));
}

TEST(Loader, RanksSplitTheEpoch) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir);
  std::multiset<int64_t> labels;
  int64_t total = 0;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions o = small(false, 2);
    o.rank = rank;
    o.world_size = 3;
    Loader loader(dataset, o);
    for (const auto& b : epoch(loader, 0)) total += b.labels.size(0);
  }
  EXPECT_EQ(total, 37);  // exact totals, no record twice or dropped
}

// Many bad records: training substitutes the next good record, so one bad record can be met again as a
// substitute for its neighbour. The warning still comes once per record per epoch, as one whole line even
// with several decoding threads.
TEST(Loader, EachBadRecordIsReportedOnceAWholeLinePerEpoch) {
  testing::ScratchDir dir;
  std::string shards[1];
  std::set<int> corrupt{3, 4, 5, 6, 11, 12, 13, 20, 21, 30};
  for (int i = 0; i < 37; ++i) {
    ImageRecordFields f;
    ImageU8 img(24, 24);
    for (size_t p = 0; p < img.pixels.size(); ++p) img.pixels[p] = static_cast<uint8_t>(p * (i + 1));
    f.jpeg = corrupt.count(i) ? std::string("not a JPEG, record ") + std::to_string(i) : encode_jpeg(img, 90);
    f.label = i % 10 + 1;
    append_record(shards[0], encode_imagenet_record(f));
  }
  write_file_atomic(dir.file("train-00000-of-00001"), shards[0]);
  auto dataset = std::make_shared<TFRecordDataset>(find_shards(dir.path().string(), "train"),
                                                   DatasetOptions{.num_classes = 10});
  Loader train(dataset, small(true, 4));
  for (int64_t e = 0; e < 3; ++e) {
    ::testing::internal::CaptureStderr();
    for (const auto& b : epoch(train, e)) EXPECT_EQ(b.images.size(0), 8);
    const std::string err = ::testing::internal::GetCapturedStderr();
    std::map<std::string, int> per_offset;
    std::istringstream lines(err);
    int count = 0;
    for (std::string line; std::getline(lines, line);) {
      ASSERT_EQ(line.rfind("warning: skipping bad record: ", 0), 0u) << line;
      ASSERT_EQ(line.find("warning:", 1), std::string::npos) << "two warnings on one line: " << line;
      ++per_offset[line];
      ++count;
    }
    for (const auto& [line, n] : per_offset) EXPECT_EQ(n, 1) << "epoch " << e << ": " << line;
    EXPECT_EQ(count, dataset->skipped()) << "epoch " << e;
    EXPECT_GE(count, 7) << "epoch " << e;  // drop_last leaves 5 of the 37 records out of an epoch
  }
}

// The per-sample random stream is keyed by (seed, epoch, record): the same record gets another crop and flip
// in another epoch (not only another position), and the same one again when the epoch is replayed (resume).
TEST(Loader, ARecordIsCroppedDifferentlyEveryEpochAndTheSameOnReplay) {
  testing::ScratchDir dir;
  std::string shard;
  for (int i = 0; i < 10; ++i) {
    ImageU8 img(48 + i, 60);
    for (size_t p = 0; p < img.pixels.size(); ++p)
      img.pixels[p] = static_cast<uint8_t>((p * 7 + p / 61 * 13) % 251);
    ImageRecordFields f;
    f.jpeg = encode_jpeg(img, 90);
    f.label = i + 1;  // label i identifies record i
    append_record(shard, encode_imagenet_record(f));
  }
  write_file_atomic(dir.file("train-00000-of-00001"), shard);
  auto dataset = std::make_shared<TFRecordDataset>(find_shards(dir.path().string(), "train"),
                                                   DatasetOptions{.num_classes = 10});
  LoaderOptions o = small(true, 2);
  o.batch_size = 10;
  Loader loader(dataset, o);
  auto by_record = [&](int64_t e) {
    std::map<int64_t, torch::Tensor> out;
    for (const auto& b : epoch(loader, e)) {
      for (int64_t i = 0; i < b.labels.size(0); ++i) out[b.labels[i].item<int64_t>()] = b.images[i].clone();
    }
    return out;
  };
  const auto e0 = by_record(0), e1 = by_record(1), e0_again = by_record(0);
  ASSERT_EQ(e0.size(), 10u);
  int differ = 0;
  for (const auto& [record, image] : e0) {
    EXPECT_TRUE(torch::equal(image, e0_again.at(record))) << "record " << record;
    differ += torch::equal(image, e1.at(record)) ? 0 : 1;
  }
  EXPECT_EQ(differ, 10);
}

TEST(Loader, BadJpegIsSubstitutedInTrainingAndLeftOutInEval) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir, /*corrupt=*/5);
  Loader train(dataset, small(true, 2));
  for (int64_t e = 0; e < 10 && dataset->skipped() == 0;
       ++e) {  // drop_last may leave record 5 out of an epoch
    for (const auto& b : epoch(train, e)) EXPECT_EQ(b.images.size(0), 8);
  }
  EXPECT_GE(dataset->skipped(), 1);
  Loader eval(dataset, small(false, 2));
  int64_t total = 0;
  for (const auto& b : epoch(eval, 0)) total += b.labels.size(0);
  EXPECT_EQ(total, 36);
}

TEST(Loader, AugmentedTrainingBatchesAreDeterministicAndDiffer) {
  testing::ScratchDir dir;
  auto dataset = make_dataset(dir);
  LoaderOptions plain = small(true, 2), augmented = small(true, 3);
  augmented.train_transform.augmentation = Augmentation::kRandAugment;
  Loader a(dataset, plain), b(dataset, augmented), c(dataset, augmented);
  const auto pa = epoch(a, 0), pb = epoch(b, 0), pc = epoch(c, 0);
  EXPECT_TRUE(torch::equal(pa[0].labels, pb[0].labels));   // same records in the same order
  EXPECT_FALSE(torch::equal(pa[0].images, pb[0].images));  // but augmented
  EXPECT_TRUE(torch::equal(pb[0].images, pc[0].images));   // deterministically
}

// The same loader over an image folder: labels from sorted class names, every file once, bad files skipped.
TEST(Loader, ReadsAnImageFolderDirectly) {
  testing::ScratchDir dir;
  for (const char* cls : {"zebra", "ant"}) std::filesystem::create_directories(dir.path() / cls);
  for (int i = 0; i < 5; ++i) {
    ImageU8 img(30 + i, 40);
    std::fill(img.pixels.begin(), img.pixels.end(), static_cast<uint8_t>(40 * i));
    write_file_atomic(dir.file(std::string(i < 3 ? "ant" : "zebra") + "/img" + std::to_string(i) + ".jpg"),
                      encode_jpeg(img, 90));
  }
  write_file_atomic(dir.file("ant/broken.jpg"), "not a jpeg");
  auto folder = std::make_shared<ImageFolderDataset>(dir.path().string());
  EXPECT_EQ(folder->classes(), (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(folder->size(), 6);
  Loader loader(folder, small(false, 2));
  std::vector<int64_t> counts(2, 0);
  for (const auto& b : epoch(loader, 0)) {
    for (int64_t i = 0; i < b.labels.size(0); ++i) ++counts[b.labels[i].item<int64_t>()];
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(folder->skipped(), 1);
  EXPECT_THROW(ImageFolderDataset(dir.file("missing")), std::runtime_error);
}

TEST(Loader, NormalizeImagesMatchesTheFormula) {
  const torch::Tensor u8 = torch::randint(0, 256, {2, 5, 4, 3}, torch::kUInt8);
  const std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  const torch::Tensor out = normalize_images(u8, mean, std);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 5, 4}));
  EXPECT_TRUE(out.is_contiguous(at::MemoryFormat::ChannelsLast));
  const torch::Tensor ref = (u8.permute({0, 3, 1, 2}).to(torch::kFloat) / 255 -
                             torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1})) /
                            torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
  EXPECT_LT(testing::rel_error(out, ref), 1e-6);
}

TEST(Loader, SyntheticBatchesAreFixedAndInRange) {
  SyntheticLoader synthetic(4, 16, 10, 1);
  const Batch a = synthetic.next(0, 0), b = synthetic.next(0, 1);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{4, 16, 16, 3}));
  EXPECT_GE(a.labels.min().item<int64_t>(), 0);
  EXPECT_LT(a.labels.max().item<int64_t>(), 10);
}

}  // namespace convnets
