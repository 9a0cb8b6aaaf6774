#include "util/pickle.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "test_support.h"
#include "util/torch_file.h"

namespace convnets {

TEST(Pickle, TensorDictRoundTripThroughTorchFile) {
  NamedTensors in = {{"conv.weight", torch::randn({4, 3, 3, 3})},
                     {"bn.num_batches_tracked", torch::tensor(int64_t{5})},
                     {"half", torch::randn({7}).to(torch::kFloat16)},
                     {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
                     {"empty", torch::empty({0, 3})},
                     {"big_index", torch::arange(3, torch::kInt64) * (int64_t{1} << 40)}};
  const std::string bytes = torch_state_dict_bytes(in);
  const NamedTensors out = torch_state_dict_from_bytes(bytes, "mem.pt");
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type());
    EXPECT_TRUE(torch::equal(out[i].second, in[i].second)) << in[i].first;
  }
}

TEST(Pickle, NonContiguousTensorsAreSavedAsTheirValues) {
  const torch::Tensor t = torch::randn({5, 6}).t();
  const NamedTensors out = torch_state_dict_from_bytes(torch_state_dict_bytes({{"t", t}}), "mem.pt");
  EXPECT_TRUE(torch::equal(out[0].second, t));
}

TEST(Pickle, MalformedPicklesFailCleanly) {
  auto no_storage = [](const std::string&, torch::ScalarType, int64_t) -> torch::Tensor {
    throw std::runtime_error("no storage");
  };
  for (const std::string& bad : {std::string(""), std::string("\x80\x02"), std::string("\x80\x02}q\x05"),
                                 std::string("\x80\x02(((((((t"), std::string("\x80\x02h\x09."),
                                 std::string("\x80\x02\xff"), std::string("\x80\x02X\xff\xff\xff\x7f")}) {
    EXPECT_THROW(pickle::load(bad, no_storage, "bad.pkl"), std::runtime_error) << bad.size();
  }
}

TEST(Pickle, ArbitraryGlobalsAreNeverExecuted) {
  // os.system("echo pwned") as a pickle: parsed as an inert object, not a state dict.
  using namespace std::string_literals;
  const std::string evil =
      "\x80\x02}X\x01\x00\x00\x00"
      "a"
      "cos\nsystem\nX\x0a\x00\x00\x00"
      "echo pwned"
      "\x85Rs."s;
  auto no_storage = [](const std::string&, torch::ScalarType, int64_t) { return torch::Tensor(); };
  auto root = pickle::load(evil, no_storage, "evil.pkl");
  ASSERT_EQ(root->kind, pickle::Value::Kind::kDict);
  EXPECT_EQ(root->get("a")->kind, pickle::Value::Kind::kObject);
  EXPECT_EQ(root->get("a")->s, "os.system");
}

// Random byte flips and truncations of a valid .pt file: every outcome is a value or a clean exception.
TEST(Pickle, MutatedTorchFilesNeverCrash) {
  const std::string good =
      torch_state_dict_bytes({{"w", torch::randn({3, 4})}, {"n", torch::tensor(int64_t{2})}});
  std::mt19937 rng(42);
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    try {
      torch_state_dict_from_bytes(testing::mutate(good, rng, trial), "fuzz.pt");
    } catch (const std::exception&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);  // most mutations are caught (CRC-32 covers the payloads)
}

}  // namespace convnets
