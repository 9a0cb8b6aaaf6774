#include "util/mac_counter.h"

#include <stdexcept>

namespace convnets {
namespace {
thread_local MacCounter* active_counter = nullptr;
}

MacCounter::MacCounter() {
  if (active_counter != nullptr)
    throw std::logic_error("MacCounter: a counter is already active on this thread");
  active_counter = this;
}

MacCounter::~MacCounter() {
  active_counter = nullptr;
}

void MacCounter::add(int64_t macs) {
  if (active_counter != nullptr) active_counter->total_ += macs;
}

}  // namespace convnets
