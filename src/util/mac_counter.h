// Multiply-accumulate counting for `convnets info`: layers report their MACs while a counter is active.
#pragma once
#include <cstdint>

namespace convnets {

// Counts the multiply-accumulates of conv and linear layers run on this thread while it is alive.
// Nested counters are not supported: creating a second one while one is active throws.
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;

  int64_t total() const { return total_; }
  void reset() { total_ = 0; }

  // Adds to the active counter of this thread; a no-op (one thread-local load) when none is active.
  static void add(int64_t macs);

 private:
  int64_t total_ = 0;
};

}  // namespace convnets
