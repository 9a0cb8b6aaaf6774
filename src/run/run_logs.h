// The logs of a run in model_dir: DLLogger JSON lines (<model_dir>/<log_filename>, echoed to the console in
// DLLogger's stdout format), TensorBoard scalars (<model_dir>/tensorboard, --tensorboard) and the per-epoch
// summary.csv. Every mode logs through this, with one table of metric units.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "run/config.h"
#include "run/tensorboard.h"
#include "util/console.h"
#include "util/dllogger.h"

namespace convnets {

enum class LogAccess {
  kWriter,  // training: model_dir is created and must be writable
  kReader,  // eval, predict, benchmarks: when model_dir (or its log) cannot be written, the log goes to the
            // console only, with a notice; readers need no write access
};

class RunLogs {
 public:
  // `write_files` false (data-parallel ranks > 0): nothing is written or echoed.
  RunLogs(const RunConfig& config, LogAccess access, bool write_files, Console& console);
  RunLogs(const RunLogs&) = delete;
  RunLogs& operator=(const RunLogs&) = delete;

  DlLogger& dll() { return *dll_; }
  // The resolved configuration as DLLogger's PARAMETER line (not echoed).
  void parameters(const RunConfig& config);
  void scalar(const std::string& tag, double value, int64_t step);
  // One row of summary.csv (the header is written with the first row of a new file).
  void csv_row(const std::vector<std::pair<std::string, std::string>>& cells);
  void flush();

 private:
  std::unique_ptr<DlLogger> dll_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::string csv_path_;
};

}  // namespace convnets
