#include "run/parallel_setup.h"

namespace convnets {

DistEnv run_dist_env(const RunConfig& config) {
  return detect_dist_env(process_env(), config.parallel.master_addr,
                         static_cast<int>(config.parallel.master_port));
}

std::unique_ptr<DataParallel> join_data_parallel(const RunConfig& config, const DistEnv& env,
                                                 const RunDevice& device, const RunContext& context) {
  if (!env.distributed()) return nullptr;
  DataParallelOptions o;
  o.group.backend = config.parallel.dist_backend;
  o.group.timeout = std::chrono::seconds(config.parallel.dist_timeout);
  o.group.on_fault = context.on_collective_fault;
  o.reducer.bucket_bytes = static_cast<int64_t>(config.parallel.bucket_size_mb * 1024 * 1024);
  o.reducer.compression = config.parallel.grad_compression;
  o.sync_batch_norm = config.parallel.sync_bn;
  return std::make_unique<DataParallel>(env, device.device, o);
}

void require_single_process(const RunConfig& config, const std::string& mode) {
  const DistEnv env = run_dist_env(config);
  if (env.distributed()) {
    throw std::invalid_argument(mode + " runs in one process, but this is rank " + std::to_string(env.rank) +
                                " of " + std::to_string(env.world_size) + " (" + env.launcher +
                                " launch); run it without the launcher");
  }
}

}  // namespace convnets
