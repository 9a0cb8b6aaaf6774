// DLLogger lines and the progress line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "util/dllogger.h"
#include "util/progress_line.h"

namespace convnets {
namespace {

TEST(DlLogger, WritesTheJsonStreamBackendFormat) {
  testing::ScratchDir dir;
  const std::string path = dir.file("log.json");
  {
    DlLogger log(path, nullptr);
    log.metadata("train_throughput", "images/s");
    log.log("PARAMETER", {{"batch_size", 256}, {"arch", "resnet50"}});
    log.log(nlohmann::json::array({1, 100}), {{"train_loss", 1.5}});
    log.log(nlohmann::json::array(), {{"top1_accuracy", 0.75}});
  }
  {
    DlLogger again(path, nullptr);  // appends (resumed runs)
    again.log(nlohmann::json::array({2}), {{"train_loss", 1.0}});
  }
  const auto lines = testing::lines_of(path);
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& l : lines) ASSERT_EQ(l.rfind("DLLL {", 0), 0u) << l;
  const auto meta = nlohmann::json::parse(lines[0].substr(5));
  EXPECT_EQ(meta["type"], "METADATA");
  EXPECT_EQ(meta["metric"], "train_throughput");
  EXPECT_EQ(meta["metadata"]["unit"], "images/s");
  const auto param = nlohmann::json::parse(lines[1].substr(5));
  EXPECT_EQ(param["type"], "LOG");
  EXPECT_EQ(param["step"], "PARAMETER");
  EXPECT_EQ(param["data"]["batch_size"], 256);
  EXPECT_TRUE(param["timestamp"].is_string());
  EXPECT_TRUE(param["elapsedtime"].is_string());
  EXPECT_NEAR(std::stod(param["timestamp"].get<std::string>()), static_cast<double>(std::time(nullptr)), 60);
  EXPECT_EQ(nlohmann::json::parse(lines[2].substr(5))["step"], nlohmann::json::array({1, 100}));
  EXPECT_EQ(nlohmann::json::parse(lines[3].substr(5))["step"], nlohmann::json::array());
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(lines[4].substr(5))["data"]["train_loss"].get<double>(), 1.0);
  EXPECT_THROW(DlLogger(dir.file("missing/dir/log.json"), nullptr), std::runtime_error);
}

TEST(ProgressLine, RendersBarCountsEtaAndStats) {
  EXPECT_EQ(render_progress("epoch 1/3", 25, 100, 75, "loss 1.0", 8),
            "epoch 1/3 [##......] 25/100 ETA 01:15  loss 1.0");
  EXPECT_EQ(render_progress("e", 0, 10, -1, "", 4), "e [....] 0/10 ETA --:--");
  EXPECT_EQ(render_progress("e", 10, 10, 0, "", 4), "e [####] 10/10 ETA 00:00");
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

}  // namespace
}  // namespace convnets
