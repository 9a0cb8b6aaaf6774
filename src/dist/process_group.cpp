#include "dist/process_group.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace convnets {
namespace {

constexpr auto kHeartbeatPeriod = std::chrono::seconds(1);
constexpr auto kProbeWait = std::chrono::seconds(3);  // > 2 heartbeat periods: a live rank moves on

std::string heartbeat_key(int rank) {
  return "heartbeat/" + std::to_string(rank);
}
// Set by a rank once it has diagnosed a failed collective (rank 0 waits for these before closing the store).
std::string failed_key(int rank) {
  return "failed/" + std::to_string(rank);
}

// `rendezvous`: the first connection of each rank, counted and waited for until all ranks are there;
// otherwise an extra connection (heartbeats, the fault probe) to an existing store.
// Under torchrun the agent's store is used (all ranks are clients); the backend's own connection setup then
// waits for every rank. Keys live under env.store_prefix.
c10::intrusive_ptr<c10d::Store> connect_store(const DistEnv& env, bool rendezvous,
                                              std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  const bool count_workers = rendezvous && !env.agent_store;
  o.isServer = count_workers && env.rank == 0;
  o.numWorkers = count_workers ? std::optional<size_t>(static_cast<size_t>(env.world_size)) : std::nullopt;
  o.waitWorkers = count_workers;
  o.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  return c10::make_intrusive<c10d::PrefixStore>(env.store_prefix, tcp);
}

std::string store_host(const DistEnv& env) {
  return (env.agent_store ? "the torchrun agent's store at "
                          : "rank 0, which hosts the rendezvous store at ") +
         env.master_addr + ":" + std::to_string(env.master_port);
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

}  // namespace

struct ProcessGroup::Impl {
  DistEnv env;
  std::chrono::seconds timeout{300};
  std::function<void(const std::string&)> on_fault;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::string backend_name;
  torch::Device device{torch::kCPU};
  uint64_t strings = 0;
  std::atomic<int64_t> progress{0};

  // Heartbeats on their own store connection: "<beat> <progress> <host>:<pid>" every second.
  std::thread heartbeat;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;

  void start_heartbeat() {
    auto client = connect_store(env, false, std::chrono::milliseconds(timeout));
    const std::string who = host_name() + ":" + std::to_string(getpid());
    heartbeat = std::thread([this, client, who] {
      std::unique_lock<std::mutex> lock(mutex);
      for (int64_t beat = 0; !stopping; ++beat) {
        lock.unlock();
        try {
          client->set(heartbeat_key(env.rank),
                      bytes_of(std::to_string(beat) + " " + std::to_string(progress.load()) + " " + who));
        } catch (const std::exception&) {
          // The store went away (rank 0 finished or died); the collectives report that, not this thread.
          lock.lock();
          return;
        }
        lock.lock();
        wake.wait_for(lock, kHeartbeatPeriod, [this] { return stopping; });
      }
    });
  }
  void stop_heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }

  // Which ranks stopped answering: read every rank's heartbeat twice, kProbeWait apart. `silent` receives
  // the ranks that never joined or stopped beating.
  std::string diagnose(std::set<int>& silent) {
    struct Beat {
      int64_t beat = -1, progress = -1;
      std::string who;
    };
    std::ostringstream out;
    try {
      auto probe = connect_store(env, false, std::chrono::milliseconds(5000));
      auto read = [&] {
        std::map<int, Beat> beats;
        for (int r = 0; r < env.world_size; ++r) {
          if (!probe->check({heartbeat_key(r)})) continue;
          const auto bytes = probe->get(heartbeat_key(r));
          std::istringstream in(std::string(bytes.begin(), bytes.end()));
          Beat b;
          in >> b.beat >> b.progress >> b.who;
          beats[r] = b;
        }
        return beats;
      };
      const auto before = read();
      std::this_thread::sleep_for(kProbeWait);
      const auto after = read();
      int64_t furthest = 0;
      for (const auto& [r, b] : after) furthest = std::max(furthest, b.progress);
      bool named = false;
      for (int r = 0; r < env.world_size; ++r) {
        if (r == env.rank) continue;
        const auto a = after.find(r);
        if (a == after.end()) {
          out << "\n  rank " << r << " never joined the heartbeat";
          named = true;
          silent.insert(r);
          continue;
        }
        const auto b = before.find(r);
        if (b != before.end() && b->second.beat == a->second.beat) {
          silent.insert(r);
          out << "\n  rank " << r << " (" << a->second.who << ") stopped responding: no heartbeat for "
              << kProbeWait.count() << " s (it died or was stopped) at step " << a->second.progress;
          named = true;
        } else if (a->second.progress < furthest) {
          out << "\n  rank " << r << " (" << a->second.who << ") is alive but behind, at step "
              << a->second.progress << " while others reached " << furthest << " (it hangs or is slow)";
          named = true;
        }
      }
      if (!named) out << "\n  every other rank is alive; the failure was on this rank or in the network";
    } catch (const std::exception&) {
      out << "\n  " << store_host(env) << (env.agent_store ? "" : ",")
          << " is unreachable: it died or its host is down";
    }
    return out.str();
  }
};

struct ProcessGroup::Pending::Impl {
  ProcessGroup* group;
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> tensors;  // kept alive until the collective is done
};

std::unique_ptr<ProcessGroup> ProcessGroup::create(const DistEnv& env, const torch::Device& device,
                                                   const ProcessGroupOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->timeout = options.timeout;
  impl->on_fault = options.on_fault;
  impl->device = device;
  const DistBackend backend = options.backend != DistBackend::kAuto
                                  ? options.backend
                                  : (device.is_cuda() ? DistBackend::kNccl : DistBackend::kGloo);
  const std::string name = backend == DistBackend::kNccl ? "nccl" : "gloo";
  impl->backend_name = name;
  const auto timeout_ms = std::chrono::milliseconds(options.timeout);
  try {
    impl->store = connect_store(env, true, timeout_ms);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                             ": rendezvous at " + env.master_addr + ":" + std::to_string(env.master_port) +
                             " (" + env.launcher + " launch) failed within " +
                             std::to_string(options.timeout.count()) + " s: " + e.what());
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(name, impl->store);
  if (backend == DistBackend::kGloo) {
#ifdef USE_C10D_GLOO
    auto o = c10d::ProcessGroupGloo::Options::create(timeout_ms);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (env.local_world_size == env.world_size) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));  // one host
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, o);
#else
    throw std::runtime_error("this build has no Gloo backend (libgloo-dev was missing at build time)");
#endif
  } else {
#ifdef USE_C10D_NCCL
    if (!device.is_cuda()) throw std::invalid_argument("dist_backend nccl needs a CUDA device");
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout_ms;
    impl->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, o);
#else
    throw std::runtime_error("this build has no NCCL backend (built without CUDA's NCCL headers)");
#endif
  }
  impl->start_heartbeat();
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProcessGroup::~ProcessGroup() {
  impl_->stop_heartbeat();
  try {
    impl_->backend->shutdown();
  } catch (const std::exception&) {
  }
}

int ProcessGroup::rank() const {
  return impl_->env.rank;
}
int ProcessGroup::size() const {
  return impl_->env.world_size;
}
std::string ProcessGroup::backend_name() const {
  return impl_->backend_name;
}

void ProcessGroup::note_progress(int64_t step) {
  impl_->progress = step;
}

void ProcessGroup::fail(const std::string& what) {
  std::set<int> silent;
  const std::string report = "convnets rank " + std::to_string(rank()) + "/" + std::to_string(size()) +
                             ": a collective failed: " + what + "\ndiagnosis:" + impl_->diagnose(silent);
  try {
    impl_->store->set(failed_key(rank()), bytes_of("1"));
  } catch (const std::exception&) {
  }
  // Rank 0 hosts the store: it stays up until every rank that is still alive has failed too and read the
  // heartbeats for its own report (their collectives give up within the timeout), then exits.
  if (rank() == 0) {
    const auto deadline =
        std::chrono::steady_clock::now() + impl_->timeout + kProbeWait + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      bool waiting = false;
      for (int r = 1; r < size() && !waiting; ++r) {
        if (silent.count(r)) continue;
        try {
          waiting = !impl_->store->check({failed_key(r)});
        } catch (const std::exception&) {
        }
      }
      if (!waiting) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // their last reads of the store
  }
  if (impl_->on_fault) impl_->on_fault(report);
  throw CollectiveFailure(report);
}

void ProcessGroup::Pending::wait() {
  try {
    if (impl_->group->impl_->backend_name == "gloo")
      impl_->work->wait(std::chrono::milliseconds(impl_->group->impl_->timeout));
    else
      impl_->work->wait();  // NCCL: the stream waits; its watchdog enforces the timeout
  } catch (const std::exception& e) {
    impl_->group->fail(e.what());
  }
}

ProcessGroup::Pending ProcessGroup::all_reduce_sum_async(torch::Tensor t) {
  auto p = std::make_shared<Pending::Impl>();
  p->group = this;
  p->tensors = {std::move(t)};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  try {
    p->work = impl_->backend->allreduce(p->tensors, o);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return Pending(std::move(p));
}

void ProcessGroup::all_reduce_sum(torch::Tensor t) {
  all_reduce_sum_async(std::move(t)).wait();
}

void ProcessGroup::broadcast(torch::Tensor t, int root) {
  auto p = std::make_shared<Pending::Impl>();
  p->group = this;
  p->tensors = {std::move(t)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  try {
    p->work = impl_->backend->broadcast(p->tensors, o);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  Pending(std::move(p)).wait();
}

std::vector<double> ProcessGroup::sum(const std::vector<double>& values) {
  auto t = torch::tensor(values, torch::kDouble).to(impl_->device);
  all_reduce_sum(t);
  t = t.cpu();
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

void ProcessGroup::barrier() {
  auto one = torch::ones({1}, torch::TensorOptions().device(impl_->device));
  all_reduce_sum(one);
  if (one.item<double>() != static_cast<double>(size())) fail("barrier: the ranks disagree");
}

torch::Tensor ProcessGroup::gather_rows(const torch::Tensor& row) {
  // A sum of zero matrices that each hold one rank's row is the gathered matrix (bytes are exact in int32).
  auto all =
      torch::zeros({size(), row.numel()}, torch::TensorOptions().dtype(torch::kInt).device(impl_->device));
  all[rank()].copy_(row.to(torch::kInt));
  all_reduce_sum(all);
  return all.cpu().to(torch::kUInt8);
}

std::string ProcessGroup::broadcast_string(const std::string& value, int root) {
  const std::string key = "string/" + std::to_string(impl_->strings++);
  try {
    if (rank() == root) {
      impl_->store->set(key, bytes_of(value));
      return value;
    }
    const auto bytes = impl_->store->get(key);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    fail(std::string("store key '") + key + "': " + e.what());
  }
}

}  // namespace convnets
