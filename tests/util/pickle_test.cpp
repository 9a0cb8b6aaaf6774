#include "util/pickle.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <random>

#include "test_support.h"
#include "util/torch_file.h"
#include "util/zip_archive.h"

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

namespace {

pickle::ValuePtr load_bytes(const std::string& data) {
  auto no_storage = [](const std::string&, torch::ScalarType, int64_t) -> torch::Tensor {
    throw std::runtime_error("no storage");
  };
  return pickle::load(data, no_storage, "crafted.pkl");
}

std::string error_of(const std::string& data) {
  try {
    load_bytes(data);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// PROTO 2, None, then `n` times the one-byte opcode `op`, then STOP.
std::string nested(char op, size_t n) {
  return "\x80\x02N" + std::string(n, op) + ".";
}

}  // namespace

// A data.pkl of None wrapped in 200,000 one-tuples used to overflow the stack (when the nested values were
// destroyed). Depth is bounded while parsing, and destruction is iterative.
TEST(Pickle, DeepNestingIsRefusedWithoutCrashing) {
  EXPECT_NE(error_of(nested('\x85', 200000)).find("nesting deeper than 256"), std::string::npos);
  // The limit is exact: None is depth 1, so 255 wrappings are accepted and 256 are not.
  EXPECT_EQ(load_bytes(nested('\x85', pickle::kMaxDepth - 1))->depth, pickle::kMaxDepth);
  EXPECT_NE(error_of(nested('\x85', pickle::kMaxDepth)), "");
  // The same through lists built with MARK ... LIST, and inside a .pt archive as --weights would read it.
  std::string lists = "\x80\x02";
  for (int k = 0; k < 100000; ++k) lists += "(";
  lists += "N";
  for (int k = 0; k < 100000; ++k) lists += "l";
  EXPECT_NE(error_of(lists + "."), "");
  // Destruction itself never recurses: a million-deep chain built by hand is released on a flat stack.
  {
    auto root = std::make_shared<pickle::Value>();
    auto* tip = root.get();
    for (int k = 0; k < 1000000; ++k) {
      tip->items.push_back(std::make_shared<pickle::Value>());
      tip = tip->items.back().get();
    }
  }
  ZipWriter zip;
  zip.add("archive/data.pkl", nested('\x85', 200000));
  try {
    torch_state_dict_from_bytes(zip.finish(), "checkpoint_e0009_u9.pt");
    ADD_FAILURE() << "a 200,000-deep pickle was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint_e0009_u9.pt"), std::string::npos) << e.what();
  }
}

// Depth could be hidden by changing a list after nesting it (its parents' depths go stale), and cycles are
// made that way; torch.save never does either, so both are refused.
TEST(Pickle, ContainersChangedAfterNestingAndCyclesAreRefused) {
  using namespace std::string_literals;
  // Opcodes: ] empty list, q N memo put, h N memo get, a append, 0 pop, \x85 one-tuple, \x86 two-tuple.
  // L = []; memo; L.append(L)
  EXPECT_NE(error_of("\x80\x02]q\x00"
                     "h\x00"
                     "a."s)
                .find("inside itself"),
            std::string::npos);
  // L = []; T = (L,); L.append(T) -> L would contain T which contains L.
  EXPECT_NE(error_of("\x80\x02]q\x00"
                     "h\x00"
                     "\x85q\x01"
                     "0h\x01"
                     "a."s)
                .find("after it was nested"),
            std::string::npos);
  // Lists A, B, C; A.append(B); then B.append(C) after B was nested in A: refused.
  std::string chain = "\x80\x02";
  for (int k = 0; k < 3; ++k) chain += "]q"s + static_cast<char>(k) + "0";
  chain +=
      "h\x00"
      "h\x01"
      "a0h\x01"
      "h\x02"
      "a0h\x00"
      "."s;
  EXPECT_NE(error_of(chain).find("after it was nested"), std::string::npos);
  // A DAG (one list referenced twice) is fine and keeps exact depths: ([(None,)], [(None,)]).
  auto dag = load_bytes(
      "\x80\x02]q\x00"
      "N\x85"
      "a0h\x00"
      "h\x00"
      "\x86."s);
  ASSERT_EQ(dag->kind, pickle::Value::Kind::kTuple);
  EXPECT_EQ(dag->depth, 4);
  EXPECT_EQ(dag->items[0], dag->items[1]);
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
