// DLLogger-compatible logging (NVIDIA/dllogger's JSONStreamBackend and StdOutBackend): JSON lines
// `DLLL {"timestamp", "datetime", "elapsedtime", "type", "step", "data"}` in a file, and `DLL <datetime> -
// <step> key : value unit ...` on the console for the lines that are echoed.
#pragma once
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "util/console.h"

namespace convnets {

class DlLogger {
 public:
  // `json_path` empty: no file. Appends, so a resumed run continues its log. `echo`: where the lines that
  // are echoed go (StdOutBackend's format); nullptr: nowhere.
  DlLogger(const std::string& json_path, Console* echo);
  ~DlLogger();
  DlLogger(const DlLogger&) = delete;
  DlLogger& operator=(const DlLogger&) = delete;

  void metadata(const std::string& metric, const std::string& unit);
  // `step`: "PARAMETER", an array such as [epoch, step], or [] for final summaries.
  void log(const nlohmann::json& step, const nlohmann::json& data, bool echo = true);
  void flush();

 private:
  std::FILE* file_ = nullptr;
  Console* echo_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, std::string> units_;
};

// One JSON line as the file holds it (without the trailing newline); for tests and tools.
std::string dllogger_line(double unix_time, double elapsed, const std::string& type,
                          const nlohmann::json& step, const nlohmann::json& data);

}  // namespace convnets
