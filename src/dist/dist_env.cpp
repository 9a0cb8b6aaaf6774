#include "dist/dist_env.h"

#include <cstdlib>
#include <stdexcept>

#include "util/parse_number.h"

namespace convnets {
namespace {

int parse_int(const std::string& name, const std::string& value, int min_value) {
  const std::optional<int64_t> v = parse_int64(value);
  if (!v || *v < min_value || *v > 1'000'000) {
    throw std::invalid_argument("environment variable " + name + "='" + value +
                                "': expected an integer >= " + std::to_string(min_value));
  }
  return static_cast<int>(*v);
}

int required_int(const EnvLookup& env, const std::string& name, int min_value, const std::string& launcher) {
  const auto v = env(name);
  if (!v) throw std::invalid_argument(launcher + " launch: environment variable " + name + " is not set");
  return parse_int(name, *v, min_value);
}

int optional_int(const EnvLookup& env, const std::string& name, int min_value, int fallback) {
  const auto v = env(name);
  return v && !v->empty() ? parse_int(name, *v, min_value) : fallback;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string first_slurm_host(const std::string& nodelist) {
  std::string out;
  int depth = 0;
  bool skipping = false;  // inside a bracket, after its first element
  for (char c : nodelist) {
    if (c == '[') {
      if (depth++ != 0) throw std::invalid_argument("SLURM node list '" + nodelist + "': nested '['");
      skipping = false;
      continue;
    }
    if (c == ']') {
      if (--depth < 0) throw std::invalid_argument("SLURM node list '" + nodelist + "': unbalanced ']'");
      skipping = false;  // the text after the bracket belongs to the host name again
      continue;
    }
    if (depth == 0 && c == ',') break;  // end of the first host expression
    if (depth > 0 && (c == ',' || c == '-')) {
      skipping = true;  // a range or list: the first element is the first host
      continue;
    }
    if (!skipping) out.push_back(c);
  }
  if (depth != 0) throw std::invalid_argument("SLURM node list '" + nodelist + "': unbalanced '['");
  if (out.empty()) throw std::invalid_argument("SLURM node list '" + nodelist + "' names no host");
  return out;
}

int slurm_tasks_on_first_node(const std::string& tasks_per_node) {
  const std::string first = tasks_per_node.substr(0, tasks_per_node.find_first_of(",("));
  return parse_int("SLURM_STEP_TASKS_PER_NODE", first, 1);
}

DistEnv detect_dist_env(const EnvLookup& env, const std::string& master_addr, int master_port) {
  DistEnv d;
  if (env("RANK") && env("WORLD_SIZE")) {
    d.launcher = "torchrun";
    d.world_size = required_int(env, "WORLD_SIZE", 1, d.launcher);
    d.rank = required_int(env, "RANK", 0, d.launcher);
    d.local_rank = optional_int(env, "LOCAL_RANK", 0, d.rank);
    d.local_world_size = optional_int(env, "LOCAL_WORLD_SIZE", 1, d.world_size);
    if (const auto a = env("MASTER_ADDR")) d.master_addr = *a;
    d.agent_store = env("TORCHELASTIC_USE_AGENT_STORE") == std::optional<std::string>("True");
    if (env("TORCHELASTIC_RESTART_COUNT"))
      d.store_prefix +=
          "/attempt_" + std::to_string(required_int(env, "TORCHELASTIC_RESTART_COUNT", 0, d.launcher));
  } else if (env("SLURM_PROCID") && (env("SLURM_STEP_NUM_TASKS") || env("SLURM_NTASKS"))) {
    // srun sets the SLURM_STEP_* variables for its step; a batch script alone has only the job's.
    d.launcher = "slurm";
    d.world_size = env("SLURM_STEP_NUM_TASKS") ? required_int(env, "SLURM_STEP_NUM_TASKS", 1, d.launcher)
                                               : required_int(env, "SLURM_NTASKS", 1, d.launcher);
    d.rank = required_int(env, "SLURM_PROCID", 0, d.launcher);
    d.local_rank = optional_int(env, "SLURM_LOCALID", 0, 0);
    if (const auto t = env("SLURM_STEP_TASKS_PER_NODE"))
      d.local_world_size = slurm_tasks_on_first_node(*t);
    else if (const auto t2 = env("SLURM_TASKS_PER_NODE"))
      d.local_world_size = slurm_tasks_on_first_node(*t2);
    if (const auto a = env("MASTER_ADDR")) {
      d.master_addr = *a;
    } else if (const auto nodes =
                   env("SLURM_STEP_NODELIST") ? env("SLURM_STEP_NODELIST") : env("SLURM_JOB_NODELIST")) {
      d.master_addr = first_slurm_host(*nodes);
    }
  } else if (env("OMPI_COMM_WORLD_RANK") && env("OMPI_COMM_WORLD_SIZE")) {
    d.launcher = "mpi";
    d.world_size = required_int(env, "OMPI_COMM_WORLD_SIZE", 1, d.launcher);
    d.rank = required_int(env, "OMPI_COMM_WORLD_RANK", 0, d.launcher);
    d.local_rank = optional_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0, 0);
    d.local_world_size = optional_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1, d.world_size);
    if (const auto a = env("MASTER_ADDR")) {
      d.master_addr = *a;
    } else if (d.local_world_size != d.world_size && master_addr.empty()) {
      throw std::invalid_argument(
          "mpirun across nodes: set MASTER_ADDR (e.g. mpirun -x MASTER_ADDR=<first host>) or --master_addr");
    }
  }
  d.master_port = optional_int(env, "MASTER_PORT", 1, d.master_port);
  if (!master_addr.empty()) d.master_addr = master_addr;
  if (master_port > 0) d.master_port = master_port;
  if (d.master_port > 65535)
    throw std::invalid_argument("master port " + std::to_string(d.master_port) + " is not a TCP port");
  if (d.rank >= d.world_size) {
    throw std::invalid_argument(d.launcher + " launch: rank " + std::to_string(d.rank) +
                                " is outside a world of size " + std::to_string(d.world_size));
  }
  if (d.local_rank >= d.local_world_size) {
    throw std::invalid_argument(d.launcher + " launch: local rank " + std::to_string(d.local_rank) +
                                " is outside a node of " + std::to_string(d.local_world_size) + " processes");
  }
  return d;
}

}  // namespace convnets
