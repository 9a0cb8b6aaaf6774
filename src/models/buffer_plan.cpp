#include "models/buffer_plan.h"

#include <algorithm>

namespace convnets {

std::vector<BufferUse> buffer_uses(const InferenceGraph& graph) {
  std::vector<BufferUse> steps;
  steps.reserve(graph.ops.size());
  for (const InferenceOp& op : graph.ops) steps.push_back({op_reads(op), op.output, -1});
  return steps;
}

std::vector<int> last_reads(const std::vector<BufferUse>& steps, int num_values) {
  std::vector<int> last(static_cast<size_t>(num_values), -1);
  for (size_t i = 0; i < steps.size(); ++i)
    for (const int v : steps[i].reads) last[static_cast<size_t>(v)] = static_cast<int>(i);
  return last;
}

namespace {

class BestFit {
 public:
  BestFit(BufferPlan& plan, const std::vector<int64_t>& value_bytes)
      : plan_(plan), value_bytes_(value_bytes) {}

  void take(int value) {
    const int64_t bytes = value_bytes_[static_cast<size_t>(value)];
    std::vector<int64_t>& size = plan_.buffer_bytes;
    // The smallest free buffer that fits, else the largest free one (grown); the first of equals.
    int best = -1;
    for (const int b : free_) {
      if (best < 0) {
        best = b;
        continue;
      }
      const bool fits = size[b] >= bytes, best_fits = size[best] >= bytes;
      if ((fits && (!best_fits || size[b] < size[best])) || (!fits && !best_fits && size[b] > size[best]))
        best = b;
    }
    if (best < 0) {
      best = static_cast<int>(size.size());
      size.push_back(0);
    } else {
      free_.erase(std::find(free_.begin(), free_.end(), best));
    }
    size[best] = std::max(size[best], bytes);
    plan_.value_buffer[static_cast<size_t>(value)] = best;
  }

  void give_back(int buffer) { free_.push_back(buffer); }

 private:
  BufferPlan& plan_;
  const std::vector<int64_t>& value_bytes_;
  std::vector<int> free_;  // in the order given back
};

}  // namespace

BufferPlan plan_buffers(const std::vector<BufferUse>& steps, const std::vector<int64_t>& value_bytes,
                        int input, int external) {
  BufferPlan plan;
  plan.value_buffer.assign(value_bytes.size(), -1);
  const std::vector<int> last = last_reads(steps, static_cast<int>(value_bytes.size()));
  BestFit buffers(plan, value_bytes);
  auto buffer_of = [&](int value) { return plan.value_buffer[static_cast<size_t>(value)]; };
  for (size_t i = 0; i < steps.size(); ++i) {
    const BufferUse& step = steps[i];
    for (const int v : step.reads)
      if (v == input && buffer_of(v) < 0) buffers.take(v);
    if (step.output == external) {
      plan.value_buffer[static_cast<size_t>(step.output)] = -1;
    } else if (step.in_place_of >= 0) {
      plan.value_buffer[static_cast<size_t>(step.output)] = buffer_of(step.in_place_of);
    } else {
      buffers.take(step.output);
    }
    for (size_t r = 0; r < step.reads.size(); ++r) {
      const int v = step.reads[r];
      if (v == step.in_place_of || last[static_cast<size_t>(v)] != static_cast<int>(i)) continue;
      if (std::find(step.reads.begin(), step.reads.begin() + static_cast<std::ptrdiff_t>(r), v) !=
          step.reads.begin() + static_cast<std::ptrdiff_t>(r))
        continue;  // read twice by the step: given back once
      const int b = buffer_of(v);
      if (b >= 0 && (step.in_place_of < 0 || buffer_of(step.in_place_of) != b)) buffers.give_back(b);
    }
  }
  return plan;
}

}  // namespace convnets
