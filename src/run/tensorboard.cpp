#include "run/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "data/tfrecord.h"
#include "util/file_io.h"
#include "util/protobuf_writer.h"

namespace convnets {
namespace {

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary).
// Summary: value = 1 (repeated Value); Value: tag = 1 (string), simple_value = 2 (float).
std::string tensorboard_version_event(double wall_time) {
  std::string e;
  proto::put_double(e, 1, wall_time);
  proto::put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string tensorboard_scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  proto::put_bytes(v, 1, tag);
  proto::put_float(v, 2, value);
  std::string summary;
  proto::put_bytes(summary, 1, v);
  std::string e;
  proto::put_double(e, 1, wall_time);
  proto::put_int(e, 2, step);
  proto::put_bytes(e, 5, summary);
  return e;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  std::filesystem::create_directories(directory);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const double t = now_unix();
  path_ =
      (std::filesystem::path(directory) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) +
                                           "." + host + "." + std::to_string(getpid())))
          .string();
  file_ = open_output_file(path_, "w");
  write_event(tensorboard_version_event(t));
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write_event(const std::string& event) {
  std::string framed;
  append_record(framed, event);
  if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size())
    throw std::runtime_error("cannot write TensorBoard event file '" + path_ + "'");
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  write_event(tensorboard_scalar_event(now_unix(), step, tag, static_cast<float>(value)));
}

void TensorBoardWriter::flush() {
  std::fflush(file_);
}

}  // namespace convnets
