#include "util/progress_line.h"

#include <cmath>
#include <cstdio>

namespace convnets {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

std::string render_progress(const std::string& label, int64_t done, int64_t total, double eta_seconds,
                            const std::string& stats, int bar_width) {
  const double fraction =
      total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0;
  const int filled = static_cast<int>(fraction * bar_width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(bar_width - filled), '.');
  std::string out = label;
  out.append(" [").append(bar).append("] ");
  out.append(std::to_string(done)).append("/").append(std::to_string(total));
  out.append(" ETA ").append(format_duration(eta_seconds));
  if (!stats.empty()) out.append("  ").append(stats);
  return out;
}

ProgressLine::ProgressLine(Console& console, std::string label, int64_t total, int64_t start_at)
    : console_(console),
      label_(std::move(label)),
      total_(total),
      start_at_(start_at),
      start_(std::chrono::steady_clock::now()) {}

void ProgressLine::update(int64_t done, const std::string& stats) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t progressed = done - start_at_;
  const double eta =
      progressed > 0 ? elapsed / static_cast<double>(progressed) * static_cast<double>(total_ - done) : -1;
  console_.progress(render_progress(label_, done, total_, eta, stats));
}

void ProgressLine::finish() {
  console_.end_progress();
}

}  // namespace convnets
