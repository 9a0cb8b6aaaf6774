#include "util/file_io.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace convnets {

TEST(FileIo, AtomicWriteReplacesAndLeavesNoTemporaries) {
  testing::ScratchDir dir;
  const auto path = dir.file("weights.bin");
  write_file_atomic(path, "first");
  write_file_atomic(path, std::string(100000, 'x'));
  EXPECT_EQ(read_file(path), std::string(100000, 'x'));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(FileIo, MissingFileErrorNamesThePath) {
  try {
    read_file("/nonexistent/dir/model.pt");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.pt"), std::string::npos);
  }
  EXPECT_THROW(write_file_atomic("/nonexistent/dir/model.pt", "x"), std::runtime_error);
}

}  // namespace convnets
