#include "util/console.h"

#include <unistd.h>

#include <cstdio>

namespace convnets {
namespace {
void write_line(std::FILE* out, const std::string& text) {
  const std::string line = text + "\n";
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}
}  // namespace

StdioConsole::StdioConsole() : tty_(isatty(STDOUT_FILENO) == 1) {}

void StdioConsole::info(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (drawn_) std::fputc('\n', stdout), drawn_ = false;
  write_line(stdout, text);
}

void StdioConsole::diagnostic(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(stdout);
  write_line(stderr, line);
}

void StdioConsole::progress(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tty_) {
    const std::string redraw = "\r" + line + "\x1b[K";
    std::fwrite(redraw.data(), 1, redraw.size(), stdout);
    std::fflush(stdout);
    drawn_ = true;
  } else {
    write_line(stdout, line);
  }
}

void StdioConsole::end_progress() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (drawn_) std::fputc('\n', stdout);
  drawn_ = false;
  std::fflush(stdout);
}

Console& stdio_console() {
  static StdioConsole console;
  return console;
}

}  // namespace convnets
