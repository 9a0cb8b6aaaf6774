// The human progress line: `epoch 3/90 [#######.......] 1234/5004 ETA 12:34  2345 img/s  loss 1.234  lr 0.1`,
// redrawn in place on a terminal, one line per update otherwise (logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "util/console.h"

namespace convnets {

class ProgressLine {
 public:
  ProgressLine(Console& console, std::string label, int64_t total, int64_t start_at = 0);
  void update(int64_t done, const std::string& stats);
  void finish();  // ends a terminal line

 private:
  Console& console_;
  std::string label_;
  int64_t total_, start_at_;
  std::chrono::steady_clock::time_point start_;
};

// "1:02:03" / "12:34"
std::string format_duration(double seconds);
std::string render_progress(const std::string& label, int64_t done, int64_t total, double eta_seconds,
                            const std::string& stats, int bar_width = 24);

}  // namespace convnets
