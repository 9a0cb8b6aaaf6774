// Where a run's human-readable messages go. The library writes through a Console it is handed; the app owns
// it and decides where the lines end up (stdout / stderr, nothing on data-parallel ranks > 0, a test's
// buffer), so no code below app/ prints by itself.
#pragma once
#include <mutex>
#include <string>

namespace convnets {

class Console {
 public:
  virtual ~Console() = default;
  // Results and progress (stdout). `text` is one or more whole lines, without the final newline.
  virtual void info(const std::string& text) = 0;
  // Diagnostics (stderr), prefixed "warning: ", "notice: " or "error: ".
  void warning(const std::string& text) { diagnostic("warning: " + text); }
  void notice(const std::string& text) { diagnostic("notice: " + text); }
  void error(const std::string& text) { diagnostic("error: " + text); }
  virtual void diagnostic(const std::string& line) = 0;
  // A progress line redrawn in place (a terminal) or printed as a line of its own (a log file).
  virtual void progress(const std::string& line) = 0;
  // Ends a progress line that was redrawn in place.
  virtual void end_progress() = 0;
};

// stdout and stderr, one write per line (loader threads report concurrently); progress redrawn in place
// when stdout is a terminal.
class StdioConsole : public Console {
 public:
  StdioConsole();
  void info(const std::string& text) override;
  void diagnostic(const std::string& line) override;
  void progress(const std::string& line) override;
  void end_progress() override;

 private:
  std::mutex mutex_;
  bool tty_;
  bool drawn_ = false;
};

// What data-parallel ranks other than 0 say: diagnostics pass through (each names its rank's problem),
// results and progress are rank 0's to print.
class DiagnosticsOnly : public Console {
 public:
  explicit DiagnosticsOnly(Console& inner) : inner_(inner) {}
  void info(const std::string&) override {}
  void diagnostic(const std::string& line) override { inner_.diagnostic(line); }
  void progress(const std::string&) override {}
  void end_progress() override {}

 private:
  Console& inner_;
};

// The process's stdio console, for the app and for tests that call the library directly.
Console& stdio_console();

}  // namespace convnets
