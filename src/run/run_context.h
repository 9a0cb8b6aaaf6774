// What the app hands every mode besides its configuration: where messages go and what to do when a
// data-parallel collective fails (the app prints the report and exits; see dist/process_group.h).
#pragma once
#include <functional>
#include <string>

#include "util/console.h"

namespace convnets {

struct RunContext {
  Console* console = &stdio_console();
  // Empty: a failed collective throws CollectiveFailure.
  std::function<void(const std::string& report)> on_collective_fault = {};
};

}  // namespace convnets
