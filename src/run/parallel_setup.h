// Data parallel from a run's configuration: this process's place in the job (the launcher's environment,
// --master_addr / --master_port win) and the job itself (--dist_backend, --dist_timeout, the gradient
// buckets, --sync_bn), with the app's fault handler.
#pragma once
#include <memory>

#include "dist/data_parallel.h"
#include "dist/dist_env.h"
#include "run/config.h"
#include "run/run_context.h"
#include "run/run_device.h"

namespace convnets {

DistEnv run_dist_env(const RunConfig& config);
// Joins the other ranks; nullptr for a single process.
std::unique_ptr<DataParallel> join_data_parallel(const RunConfig& config, const DistEnv& env,
                                                 const RunDevice& device, const RunContext& context);
// predict and inference_benchmark measure one process; a multi-process launch would repeat them per rank.
// Throws naming `mode` and the launch.
void require_single_process(const RunConfig& config, const std::string& mode);

}  // namespace convnets
