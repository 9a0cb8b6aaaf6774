#include "util/dllogger.h"

#include <ctime>
#include <stdexcept>

#include "util/file_io.h"

namespace convnets {
namespace {

std::string datetime_string(double unix_time) {
  const auto seconds = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof(out), "%s.%06d", buf,
                static_cast<int>((unix_time - static_cast<double>(seconds)) * 1e6));
  return out;
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string step_text(const nlohmann::json& step) {
  if (step.is_string()) return step.get<std::string>();
  std::string s;
  if (step.is_array()) {
    const char* names[] = {"Epoch", "Iteration", "Validation Iteration"};
    for (size_t i = 0; i < step.size(); ++i) {
      if (!s.empty()) s += ' ';
      s += (i < 3 ? names[i] : "") + std::string(": ") + step[i].dump();
    }
  }
  return s;
}

}  // namespace

std::string dllogger_line(double unix_time, double elapsed, const std::string& type,
                          const nlohmann::json& step, const nlohmann::json& data) {
  nlohmann::ordered_json j;
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%.6f", unix_time);
  j["timestamp"] = ts;
  j["datetime"] = datetime_string(unix_time);
  std::snprintf(ts, sizeof(ts), "%.6f", elapsed);
  j["elapsedtime"] = ts;
  j["type"] = type;
  j["step"] = step;
  if (type == "METADATA") {
    j["metric"] = data.at("metric");
    j["metadata"] = data.at("metadata");
  } else {
    j["data"] = data;
  }
  // Paths from the command line need not be UTF-8: invalid bytes become U+FFFD instead of an exception.
  return "DLLL " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

DlLogger::DlLogger(const std::string& json_path, Console* echo)
    : echo_(echo), start_(std::chrono::steady_clock::now()) {
  if (!json_path.empty()) {
    file_ = open_output_file(json_path, "a");  // no symbolic link followed; throws naming the path
  }
}

DlLogger::~DlLogger() {
  if (file_) std::fclose(file_);
}

void DlLogger::metadata(const std::string& metric, const std::string& unit) {
  units_[metric] = unit;
  if (!file_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = dllogger_line(now_unix(), elapsed, "METADATA", nullptr,
                                         {{"metric", metric}, {"metadata", {{"unit", unit}}}});
  std::fprintf(file_, "%s\n", line.c_str());
}

void DlLogger::log(const nlohmann::json& step, const nlohmann::json& data, bool echo) {
  const double unix_time = now_unix();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (file_) {
    std::fprintf(file_, "%s\n", dllogger_line(unix_time, elapsed, "LOG", step, data).c_str());
    std::fflush(file_);
  }
  if (!echo || !echo_) return;
  std::string out = "DLL " + datetime_string(unix_time) + " - " + step_text(step);
  for (const auto& [key, value] : data.items()) {
    out += " " + key + " : ";
    if (value.is_number_float()) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.6g", value.get<double>());
      out += buf;
    } else {
      out += value.is_string() ? value.get<std::string>()
                               : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    const auto u = units_.find(key);
    if (u != units_.end()) out += " " + u->second;
  }
  echo_->info(out);
}

void DlLogger::flush() {
  if (file_) std::fflush(file_);
}

}  // namespace convnets
