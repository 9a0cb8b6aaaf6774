// One data-parallel job's communicator: a c10d TCPStore rendezvous on rank 0's host plus ProcessGroupNCCL
// (CUDA tensors) or ProcessGroupGloo (CPU). The c10d headers stay inside process_group.cpp.
//
// Faults: every collective is bounded by the timeout. When one fails (a peer died, hung or was stopped),
// this process works out which ranks stopped answering from per-rank heartbeats and progress counters kept
// in the store and hands that report to the options' fault handler (the app prints it and exits: a job
// never hangs silently); without a handler, or when it returns, CollectiveFailure is thrown.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "dist/dist_env.h"

namespace convnets {

enum class DistBackend {
  kAuto,  // NCCL on CUDA, Gloo on the CPU
  kNccl,
  kGloo,  // CPU tensors, or CUDA tensors through host copies (ranks sharing one GPU)
};

struct ProcessGroupOptions {
  DistBackend backend = DistBackend::kAuto;
  std::chrono::seconds timeout{300};
  // Called with the fault report (which ranks stopped answering) when a collective fails. A process whose
  // collective failed cannot count on its communicator's destructors to return, so the app's handler
  // prints the report and exits at once.
  std::function<void(const std::string& report)> on_fault;
};

// A collective failed (thrown when no fault handler ended the process); what() is the fault report.
class CollectiveFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ProcessGroup {
 public:
  // Blocks until every rank has joined (or the timeout passes: then throws, naming the store address).
  static std::unique_ptr<ProcessGroup> create(const DistEnv& env, const torch::Device& device,
                                              const ProcessGroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  bool is_main() const { return rank() == 0; }
  std::string backend_name() const;

  // An all-reduce in flight; wait() before reading the tensor.
  class Pending {
   public:
    struct Impl;
    explicit Pending(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    void wait();

   private:
    std::shared_ptr<Impl> impl_;
  };
  // Sum over ranks, in place; `t` must be contiguous and on this group's device (or CPU for gloo).
  Pending all_reduce_sum_async(torch::Tensor t);
  void all_reduce_sum(torch::Tensor t);
  void broadcast(torch::Tensor t, int root = 0);
  // Element-wise sums of small host values (metrics, counters), in float64.
  std::vector<double> sum(const std::vector<double>& values);
  void barrier();
  // Every rank's `row` (a 1-D uint8 tensor of the same length everywhere), stacked in rank order, on every
  // rank.
  torch::Tensor gather_rows(const torch::Tensor& row);
  // Rank `root`'s string on every rank (through the store).
  std::string broadcast_string(const std::string& value, int root = 0);
  // Records how far this rank got (e.g. the optimizer update), for the fault report.
  void note_progress(int64_t step);

  // Diagnoses the failure `what`, hands the report to the fault handler, then throws CollectiveFailure.
  [[noreturn]] void fail(const std::string& what);

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace convnets
