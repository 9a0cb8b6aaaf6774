#include "util/zip_archive.h"

#include <gtest/gtest.h>

namespace convnets {

TEST(ZipArchive, RoundTripWithAlignedData) {
  ZipWriter w;
  w.add("archive/data.pkl", "pickle bytes");
  w.add("archive/data/0", std::string(1000, '\x7f'));
  w.add("archive/empty", "");
  const std::string zip = w.finish();
  ZipReader r(zip, "test.zip");
  ASSERT_EQ(r.names().size(), 3u);
  EXPECT_EQ(r.read("archive/data.pkl"), "pickle bytes");
  EXPECT_EQ(r.read("archive/data/0"), std::string(1000, '\x7f'));
  EXPECT_EQ(r.read("archive/empty"), "");
  EXPECT_EQ((r.read("archive/data/0").data() - zip.data()) % 64, 0);
  EXPECT_THROW(r.read("archive/missing"), std::runtime_error);
}

TEST(ZipArchive, CorruptionIsDetected) {
  ZipWriter w;
  w.add("a", "hello world");
  std::string zip = w.finish();
  {
    std::string bad = zip;
    bad[bad.find("hello")] = 'j';  // payload change: CRC mismatch
    ZipReader r(bad, "bad.zip");
    EXPECT_THROW(r.read("a"), std::runtime_error);
  }
  for (size_t cut : {size_t{0}, size_t{10}, zip.size() / 2, zip.size() - 1}) {
    EXPECT_THROW(ZipReader(std::string_view(zip).substr(0, cut), "cut.zip"), std::runtime_error) << cut;
  }
}

}  // namespace convnets
