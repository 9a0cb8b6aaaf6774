#include "util/safetensors.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <random>

#include "test_support.h"

namespace convnets {
namespace {
std::string with_header(const std::string& json, const std::string& data) {
  std::string out;
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((json.size() >> (8 * k)) & 0xFF));
  return out + json + data;
}
}  // namespace

TEST(Safetensors, RoundTripAllDtypesAndMetadata) {
  NamedTensors in;
  for (auto dtype : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
                     torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool}) {
    in.emplace_back(std::string("t_") + c10::toString(dtype), (torch::rand({3, 5}) * 100).to(dtype));
  }
  in.emplace_back("scalar", torch::tensor(3.5));
  in.emplace_back("empty", torch::empty({0}));
  testing::ScratchDir dir;
  save_safetensors(dir.file("x.safetensors"), in, {{"format", "pt"}});
  const SafetensorsFile out = load_safetensors(dir.file("x.safetensors"));
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);
    EXPECT_TRUE(torch::equal(out.tensors[i].second, in[i].second)) << in[i].first;
  }
  EXPECT_EQ(out.metadata.at("format"), "pt");
}

TEST(Safetensors, BadFilesGiveErrorsNamingTheProblem) {
  auto error_of = [](const std::string& bytes) -> std::string {
    try {
      parse_safetensors(bytes, "bad.safetensors");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of("abc").find("too short"), std::string::npos);
  EXPECT_NE(error_of(with_header("{", "")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(
      error_of(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234")).find("'a'"),
      std::string::npos);  // truncated data
  EXPECT_NE(error_of(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"))
                .find("elements"),
            std::string::npos);
  EXPECT_NE(error_of(with_header(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "1")).find("Q7"),
            std::string::npos);
  EXPECT_NE(error_of(with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                                 "123"))
                .find("overlap"),
            std::string::npos);
  std::string huge_header(8, '\xff');
  EXPECT_NE(error_of(huge_header + "{}").find("header length"), std::string::npos);
}

TEST(Safetensors, MutatedFilesNeverCrash) {
  const std::string good = safetensors_bytes({{"w", torch::randn({4, 4})}, {"b", torch::randn({4})}});
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    try {
      parse_safetensors(testing::mutate(good, rng, trial), "fuzz.safetensors");
    } catch (const std::runtime_error&) {
    }
  }
}

}  // namespace convnets
