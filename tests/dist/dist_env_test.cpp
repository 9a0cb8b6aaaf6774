#include "dist/dist_env.h"

#include <gtest/gtest.h>

#include <map>

namespace convnets {
namespace {

EnvLookup fake(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    const auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(DistEnv, NoLauncherIsOneProcess) {
  const DistEnv d = detect_dist_env(fake({}));
  EXPECT_EQ(d.launcher, "none");
  EXPECT_EQ(d.world_size, 1);
  EXPECT_FALSE(d.distributed());
}

TEST(DistEnv, Torchrun) {
  const DistEnv d = detect_dist_env(fake({{"RANK", "5"},
                                          {"WORLD_SIZE", "16"},
                                          {"LOCAL_RANK", "1"},
                                          {"LOCAL_WORLD_SIZE", "8"},
                                          {"MASTER_ADDR", "node07"},
                                          {"MASTER_PORT", "29400"}}));
  EXPECT_EQ(d.launcher, "torchrun");
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 16);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 8);
  EXPECT_EQ(d.master_addr, "node07");
  EXPECT_EQ(d.master_port, 29400);
  EXPECT_FALSE(d.agent_store);  // a hand-set environment: rank 0 hosts the store
  EXPECT_EQ(d.store_prefix, "convnets");
}

TEST(DistEnv, TorchrunAgentStoreAndRestarts) {
  const DistEnv d = detect_dist_env(fake({{"RANK", "1"},
                                          {"WORLD_SIZE", "2"},
                                          {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                          {"TORCHELASTIC_RESTART_COUNT", "3"}}));
  EXPECT_TRUE(d.agent_store);
  EXPECT_EQ(d.store_prefix, "convnets/attempt_3");  // keys of attempt 2 are never read again
  EXPECT_THROW(
      detect_dist_env(fake({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_RESTART_COUNT", "x"}})),
      std::invalid_argument);
}

TEST(DistEnv, FlagsOverrideTheEnvironment) {
  const DistEnv d = detect_dist_env(
      fake({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1234"}}), "b", 4321);
  EXPECT_EQ(d.master_addr, "b");
  EXPECT_EQ(d.master_port, 4321);
}

TEST(DistEnv, SlurmStepVariablesAndNodeList) {
  const DistEnv d = detect_dist_env(fake({{"SLURM_PROCID", "9"},
                                          {"SLURM_NTASKS", "32"},
                                          {"SLURM_STEP_NUM_TASKS", "16"},
                                          {"SLURM_LOCALID", "1"},
                                          {"SLURM_STEP_TASKS_PER_NODE", "8(x2)"},
                                          {"SLURM_STEP_NODELIST", "gpu[007-008]"},
                                          {"SLURM_JOB_NODELIST", "gpu[001-010]"}}));
  EXPECT_EQ(d.launcher, "slurm");
  EXPECT_EQ(d.rank, 9);
  EXPECT_EQ(d.world_size, 16);  // the step's tasks, not the job's
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 8);
  EXPECT_EQ(d.master_addr, "gpu007");
  EXPECT_EQ(d.master_port, 29500);
}

TEST(DistEnv, TorchrunWinsOverSlurm) {
  // torchrun started inside a SLURM allocation: its variables describe the job.
  const DistEnv d = detect_dist_env(
      fake({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}));
  EXPECT_EQ(d.launcher, "torchrun");
  EXPECT_EQ(d.rank, 1);
}

TEST(DistEnv, OpenMpi) {
  const DistEnv d = detect_dist_env(fake({{"OMPI_COMM_WORLD_RANK", "3"},
                                          {"OMPI_COMM_WORLD_SIZE", "4"},
                                          {"OMPI_COMM_WORLD_LOCAL_RANK", "3"},
                                          {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}));
  EXPECT_EQ(d.launcher, "mpi");
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.master_addr, "127.0.0.1");  // one node: loopback
}

TEST(DistEnv, MultiNodeMpiNeedsAMasterAddress) {
  const auto env = fake({{"OMPI_COMM_WORLD_RANK", "0"},
                         {"OMPI_COMM_WORLD_SIZE", "16"},
                         {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                         {"OMPI_COMM_WORLD_LOCAL_SIZE", "8"}});
  EXPECT_THROW(detect_dist_env(env), std::invalid_argument);
  EXPECT_EQ(detect_dist_env(env, "host0").master_addr, "host0");
}

TEST(DistEnv, BadValuesNameTheVariable) {
  auto message = [](std::map<std::string, std::string> vars) {
    try {
      detect_dist_env(fake(std::move(vars)));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("rank 2 is outside a world of size 2"),
            std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "0"}}).find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("not a TCP port"),
            std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "12ab"}}).find("MASTER_PORT"),
            std::string::npos);
}

TEST(DistEnv, SlurmNodeLists) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("gpu[007-010,012],cpu1"), "gpu007");
  EXPECT_EQ(first_slurm_host("gpu[12,3-4]"), "gpu12");
  EXPECT_EQ(first_slurm_host("rack[1-2]-n[3-4]"), "rack1-n3");
  EXPECT_EQ(first_slurm_host("a-b[09-10].cluster"), "a-b09.cluster");
  EXPECT_THROW(first_slurm_host("gpu[1-2"), std::invalid_argument);
  EXPECT_THROW(first_slurm_host("gpu]"), std::invalid_argument);
  EXPECT_THROW(first_slurm_host(""), std::invalid_argument);
  EXPECT_EQ(slurm_tasks_on_first_node("8(x4)"), 8);
  EXPECT_EQ(slurm_tasks_on_first_node("2,1"), 2);
  EXPECT_THROW(slurm_tasks_on_first_node("(x4)"), std::invalid_argument);
}

}  // namespace
}  // namespace convnets
