#include "util/crc32.h"

#include <gtest/gtest.h>

#include <string>

namespace convnets {

TEST(Crc32, StandardCheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32_ieee(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(crc32_ieee(nullptr, 0), 0u);
}

TEST(Crc32, IncrementalEqualsOneShot) {
  std::string s(1000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 37 + 11);
  const uint32_t whole = crc32_ieee(s.data(), s.size());
  for (size_t split : {0, 1, 3, 4, 5, 499, 1000}) {
    EXPECT_EQ(crc32_ieee(s.data() + split, s.size() - split, crc32_ieee(s.data(), split)), whole) << split;
  }
}

TEST(Crc32c, StandardCheckValueAndMask) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  // 32 zero bytes: RFC 3720 B.4 test vector.
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(mask_crc32c(0), 0xa282ead8u);
}

TEST(Crc32c, IncrementalAndUnalignedEqualOneShot) {
  std::string s(1003, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + 7);
  const uint32_t whole = crc32c(s.data(), s.size());
  for (size_t split : {1, 3, 8, 9, 500, 1002}) {
    EXPECT_EQ(crc32c(s.data() + split, s.size() - split, crc32c(s.data(), split)), whole) << split;
  }
}

}  // namespace convnets
