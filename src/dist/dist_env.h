// Where this process sits in a data-parallel job, read from the launcher's environment: torchrun's variables,
// else SLURM's (srun), else Open MPI's (mpirun); none of them means a single process.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace convnets {

struct DistEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "none";  // "torchrun", "slurm", "mpi" or "none"
  // torchrun's agent hosts the store at MASTER_PORT and keeps it across restarts: every rank is a client,
  // and each restart ("attempt") gets its own key space so no rank reads a key left by the one before.
  bool agent_store = false;
  std::string store_prefix = "convnets";
  bool distributed() const { return world_size > 1; }
};

// Returns the value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// Reads the launcher variables. `master_addr` / `master_port` (flags; empty / 0 = not given) override what
// the environment says. Throws std::invalid_argument naming the variable for malformed or inconsistent
// values (e.g. RANK >= WORLD_SIZE).
DistEnv detect_dist_env(const EnvLookup& env, const std::string& master_addr = "", int master_port = 0);

// The first host of a SLURM node list: "gpu[007-010,012],cpu1" -> "gpu007", "rack[1-2]-n[3-4]" -> "rack1-n3".
std::string first_slurm_host(const std::string& nodelist);

// Tasks on this node from a SLURM tasks-per-node list: "8(x4)" -> 8, "2,1" -> 2 (the first node's).
int slurm_tasks_on_first_node(const std::string& tasks_per_node);

}  // namespace convnets
