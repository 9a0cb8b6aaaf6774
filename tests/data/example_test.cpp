#include "data/example.h"

#include <gtest/gtest.h>

#include <random>

#include "data/imagenet_record.h"
#include "test_support.h"

namespace convnets {

TEST(Example, BuilderRoundTrip) {
  ExampleBuilder b;
  b.add_bytes("image/encoded", "\xff\xd8jpeg")
      .add_int64s("image/class/label", {7, -3, int64_t{1} << 40})
      .add_floats("image/object/bbox/xmin", {0.25f, 0.5f})
      .add_floats("empty", {});
  const std::string bytes = b.serialize();
  Example e;
  std::string error;
  ASSERT_TRUE(parse_example(bytes, e, error)) << error;
  ASSERT_EQ(e.features.size(), 4u);
  EXPECT_EQ(e.find("image/encoded")->bytes.at(0), "\xff\xd8jpeg");
  EXPECT_EQ(e.find("image/class/label")->ints, (std::vector<int64_t>{7, -3, int64_t{1} << 40}));
  EXPECT_EQ(e.find("image/object/bbox/xmin")->floats, (std::vector<float>{0.25f, 0.5f}));
  EXPECT_EQ(e.find("empty")->kind, Feature::Kind::kFloat);
  EXPECT_EQ(e.find("missing"), nullptr);
  // Zero copy: the bytes value points into the input.
  const auto v = e.find("image/encoded")->bytes[0];
  EXPECT_GE(v.data(), bytes.data());
  EXPECT_LT(v.data(), bytes.data() + bytes.size());
}

TEST(Example, ImageNetSchemaChecks) {
  ImageRecordFields f;
  f.jpeg = "JPEGDATA";
  f.label = 1000;
  f.boxes = {{0.1f, 0.2f, 0.7f, 0.9f}};
  ImageRecord r;
  std::string error;
  ASSERT_TRUE(decode_imagenet_record(encode_imagenet_record(f), 1000, r, error)) << error;
  EXPECT_EQ(r.label, 999);
  EXPECT_EQ(r.encoded, "JPEGDATA");
  ASSERT_EQ(r.boxes.size(), 1u);
  EXPECT_FLOAT_EQ(r.boxes[0].xmax, 0.9f);

  EXPECT_FALSE(decode_imagenet_record(encode_imagenet_record(f), 10, r, error));
  EXPECT_NE(error.find("outside 1..10"), std::string::npos);
  EXPECT_FALSE(
      decode_imagenet_record(ExampleBuilder().add_bytes("image/encoded", "x").serialize(), 10, r, error));
  EXPECT_NE(error.find("image/class/label"), std::string::npos);
}

// Found by the libFuzzer target: an empty *packed* float list (field present, zero bytes) is valid.
TEST(Example, EmptyPackedFloatList) {
  using namespace std::string_literals;
  const std::string feature = "\x12\x02\x0a\x00"s;  // float_list { value: packed, 0 bytes }
  const std::string entry = "\x0a\x01k\x12"s + char(feature.size()) + feature;
  const std::string features = "\x0a"s + char(entry.size()) + entry;
  const std::string example = "\x0a"s + char(features.size()) + features;
  Example e;
  std::string error;
  ASSERT_TRUE(parse_example(example, e, error)) << error;
  ASSERT_NE(e.find("k"), nullptr);
  EXPECT_EQ(e.find("k")->kind, Feature::Kind::kFloat);
  EXPECT_TRUE(e.find("k")->floats.empty());
}

TEST(Example, MutatedExamplesNeverCrash) {
  ImageRecordFields f;
  f.jpeg = std::string(200, 'j');
  f.label = 3;
  f.boxes = {{0.1f, 0.2f, 0.7f, 0.9f}, {0.0f, 0.0f, 1.0f, 1.0f}};
  const std::string good = encode_imagenet_record(f);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 5000; ++trial) {
    ImageRecord r;
    std::string error;
    decode_imagenet_record(testing::mutate(good, rng, trial), 1000, r, error);
  }
}

}  // namespace convnets
