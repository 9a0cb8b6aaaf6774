// TensorBoard event files, read back by TensorFlow.
#include "run/tensorboard.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "test_support.h"

namespace convnets {
namespace {

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
  EXPECT_EQ(testing::lines_of(dir.file("out.txt")),
            (std::vector<std::string>{"train/loss 10 2.5", "train/loss 20 1.25", "eval/top1 20 0.875"}));
}

}  // namespace
}  // namespace convnets
