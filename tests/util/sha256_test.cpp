#include "util/sha256.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "test_support.h"

namespace convnets {
namespace {

// FIPS 180-2's examples: one block, two blocks (the padding spills over), a million bytes.
TEST(Sha256, KnownDigests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Every length across the block and padding boundaries, against Python's hashlib.
TEST(Sha256, EveryLengthUpTo200MatchesHashlib) {
  testing::ScratchDir dir;
  std::string data;
  for (int i = 0; i < 200; ++i) data.push_back(static_cast<char>((i * 73 + 11) & 0xFF));
  std::ofstream(dir.file("data.bin"), std::ios::binary) << data;
  const std::string cmd = testing::python_exe() +
                          " -c \"import hashlib,sys; d=open(sys.argv[1],'rb').read(); "
                          "print('\\n'.join(hashlib.sha256(d[:n]).hexdigest() for n in range(201)))\" " +
                          dir.file("data.bin") + " > " + dir.file("ref.txt");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto ref = testing::lines_of(dir.file("ref.txt"));
  ASSERT_EQ(ref.size(), 201u);
  for (size_t n = 0; n <= 200; ++n) EXPECT_EQ(sha256_hex(std::string_view(data).substr(0, n)), ref[n]) << n;
}

}  // namespace
}  // namespace convnets
