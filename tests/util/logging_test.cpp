// DLLogger lines, the progress line and TensorBoard event files (read back by TensorFlow).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "train/tensorboard.h"
#include "util/dllogger.h"
#include "util/progress_line.h"

namespace convnets {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(DlLogger, WritesTheJsonStreamBackendFormat) {
  testing::ScratchDir dir;
  const std::string path = dir.file("log.json");
  {
    DlLogger log(path, false);
    log.metadata("train_throughput", "images/s");
    log.log("PARAMETER", {{"batch_size", 256}, {"arch", "resnet50"}});
    log.log(nlohmann::json::array({1, 100}), {{"train_loss", 1.5}});
    log.log(nlohmann::json::array(), {{"top1_accuracy", 0.75}});
  }
  {
    DlLogger again(path, false);  // appends (resumed runs)
    again.log(nlohmann::json::array({2}), {{"train_loss", 1.0}});
  }
  const auto lines = lines_of(path);
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
  EXPECT_THROW(DlLogger(dir.file("missing/dir/log.json"), false), std::runtime_error);
}

TEST(ProgressLine, RendersBarCountsEtaAndStats) {
  EXPECT_EQ(render_progress("epoch 1/3", 25, 100, 75, "loss 1.0", 8),
            "epoch 1/3 [##......] 25/100 ETA 01:15  loss 1.0");
  EXPECT_EQ(render_progress("e", 0, 10, -1, "", 4), "e [....] 0/10 ETA --:--");
  EXPECT_EQ(render_progress("e", 10, 10, 0, "", 4), "e [####] 10/10 ETA 00:00");
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

TEST(TensorBoard, TensorFlowReadsOurScalars) {
  testing::ScratchDir dir;
  std::string path;
  {
    TensorBoardWriter tb(dir.file("tb"));
    tb.scalar("train/loss", 2.5, 10);
    tb.scalar("train/loss", 1.25, 20);
    tb.scalar("eval/top1", 0.875, 20);
    path = tb.path();
  }
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/read_tensorboard.py " + path + " > " + dir.file("out.txt");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(lines_of(dir.file("out.txt")),
            (std::vector<std::string>{"train/loss 10 2.5", "train/loss 20 1.25", "eval/top1 20 0.875"}));
}

}  // namespace
}  // namespace convnets
