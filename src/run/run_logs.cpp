#include "run/run_logs.h"

#include <filesystem>

#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

// The units of every metric a mode logs (DLLogger METADATA lines).
void declare_units(DlLogger& dll) {
  for (const char* m : {"train_throughput", "eval_throughput", "ema_eval_throughput", "throughput"})
    dll.metadata(m, "images/s");
  for (const char* m :
       {"eval_latency_avg", "eval_latency_p50", "eval_latency_p90", "eval_latency_p95", "eval_latency_p99",
        "train_step_latency_avg", "train_step_latency_p50", "train_step_latency_p90",
        "train_step_latency_p99", "latency_avg", "latency_p50", "latency_p90", "latency_p95", "latency_p99"})
    dll.metadata(m, "ms");
  for (const char* m : {"top1_accuracy", "top5_accuracy", "ema_top1_accuracy", "ema_top5_accuracy"})
    dll.metadata(m, "fraction");
}

// The JSON log's path, or "" when a reader cannot write it.
std::string log_path(const OutputConfig& out, LogAccess access, Console& console) {
  if (out.model_dir.empty()) return {};
  const std::string path = (fs::path(out.model_dir) / out.log_filename).string();
  if (access == LogAccess::kWriter) return path;
  try {
    fs::create_directories(out.model_dir);  // eval --weights may name a fresh directory
    std::fclose(open_output_file(path, "a"));
    return path;
  } catch (const std::exception& e) {
    console.notice(std::string("not writing the log file: ") + e.what());
    return {};
  }
}

}  // namespace

RunLogs::RunLogs(const RunConfig& config, LogAccess access, bool write_files, Console& console) {
  const OutputConfig& out = config.output;
  const std::string json = write_files ? log_path(out, access, console) : std::string();
  dll_ = std::make_unique<DlLogger>(json, write_files ? &console : nullptr);
  declare_units(*dll_);
  if (write_files && access == LogAccess::kWriter && !out.model_dir.empty()) {
    if (out.tensorboard)
      tb_ = std::make_unique<TensorBoardWriter>((fs::path(out.model_dir) / "tensorboard").string());
    csv_path_ = (fs::path(out.model_dir) / "summary.csv").string();
  }
}

void RunLogs::parameters(const RunConfig& config) {
  dll_->log("PARAMETER", config_to_json(config), /*echo=*/false);
}

void RunLogs::scalar(const std::string& tag, double v, int64_t step) {
  if (tb_) tb_->scalar(tag, v, step);
}

void RunLogs::csv_row(const std::vector<std::pair<std::string, std::string>>& cells) {
  if (csv_path_.empty()) return;
  const bool fresh = !fs::exists(csv_path_);
  std::string text;
  if (fresh) {
    for (size_t i = 0; i < cells.size(); ++i) text += (i ? "," : "") + cells[i].first;
    text += "\n";
  }
  for (size_t i = 0; i < cells.size(); ++i) text += (i ? "," : "") + cells[i].second;
  text += "\n";
  std::FILE* out = open_output_file(csv_path_, "a");  // no symbolic link followed
  const bool ok = std::fwrite(text.data(), 1, text.size(), out) == text.size();
  if (std::fclose(out) != 0 || !ok) throw std::runtime_error("cannot append to '" + csv_path_ + "'");
}

void RunLogs::flush() {
  dll_->flush();
  if (tb_) tb_->flush();
}

}  // namespace convnets
