// TensorBoard scalar event files (events.out.tfevents.<time>.<host>): TFRecord-framed tensorflow.Event
// protos, written by hand (one message shape: wall_time, step, summary { value { tag, simple_value } }).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace convnets {

class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::string& directory);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// The serialized Event protos (exposed for tests).
std::string tensorboard_version_event(double wall_time);
std::string tensorboard_scalar_event(double wall_time, int64_t step, const std::string& tag, float value);

}  // namespace convnets
