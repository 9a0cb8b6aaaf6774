#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstdlib>

#include "models/registry.h"
#include "test_support.h"
#include "train/optimizers.h"
#include "train/param_groups.h"
#include "util/file_io.h"

namespace convnets {
namespace {

void train_steps(torch::Tensor& w, Optimizer& opt, int n) {
  for (int i = 0; i < n; ++i) {
    opt.zero_grad();
    (w * w * torch::arange(1, w.numel() + 1, w.options()) + torch::sin(w)).sum().backward();
    opt.step(0.01);
  }
}

}  // namespace

TEST(Checkpoint, RoundTripAndPythonLoadsItsStateDict) {
  auto model = create_model("resnet18", {.num_classes = 10});
  MomentumSgd opt(weight_decay_groups(*model, DecayPolicy::kAllButBatchNorm, 1e-4), 0.9);
  for (auto& p : model->parameters()) p.mutable_grad() = torch::randn_like(p);
  opt.step(0.1);
  const TensorSections sections = {
      {"state_dict", state_dict(*model)},
      {"optimizer", opt.state()},
      {"meta", {{"epoch", torch::tensor(int64_t{3})}, {"rng", cpu_rng_state()}}}};
  testing::ScratchDir dir;
  save_checkpoint(dir.file("c.pt"), sections);
  const TensorSections back = load_checkpoint(dir.file("c.pt"));
  ASSERT_EQ(back.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    ASSERT_EQ(back[s].second.size(), sections[s].second.size());
    for (size_t i = 0; i < back[s].second.size(); ++i) {
      EXPECT_EQ(back[s].second[i].first, sections[s].second[i].first);
      EXPECT_TRUE(torch::equal(back[s].second[i].second, sections[s].second[i].second));
    }
  }
  EXPECT_THROW(section(back, "ema_state_dict"), std::runtime_error);
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_checkpoint.py " + dir.file("c.pt");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // Truncated: a clear error naming the file.
  const std::string bytes = read_file(dir.file("c.pt"));
  write_file_atomic(dir.file("cut.pt"), bytes.substr(0, bytes.size() / 2));
  try {
    load_checkpoint(dir.file("cut.pt"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.pt"), std::string::npos);
  }
}

// Optimizer and RNG state restored from a checkpoint continue bit for bit.
TEST(Checkpoint, OptimizerAndRngResumeBitExactly) {
  for (const std::string kind : {"rmsprop", "adamw", "sgd"}) {
    auto make = [&](torch::Tensor w) -> std::unique_ptr<Optimizer> {
      std::vector<ParamGroup> groups = {{{w}, 1e-3}};
      if (kind == "rmsprop") return std::make_unique<KerasRmsprop>(groups, 0.9, 0.9, 1e-3);
      if (kind == "adamw") return std::make_unique<AdamW>(groups);
      return std::make_unique<MomentumSgd>(groups, 0.9);
    };
    torch::manual_seed(0);
    torch::Tensor a = torch::randn({16}).requires_grad_(true);
    auto opt_a = make(a);
    train_steps(a, *opt_a, 3);
    testing::ScratchDir dir;
    save_checkpoint(
        dir.file("c.pt"),
        {{"w", {{"w", a.detach()}}}, {"optimizer", opt_a->state()}, {"meta", {{"rng", cpu_rng_state()}}}});
    const torch::Tensor noise_a = torch::randn({4});
    train_steps(a, *opt_a, 2);

    torch::manual_seed(123);  // a different process state, replaced by the checkpoint
    const TensorSections back = load_checkpoint(dir.file("c.pt"));
    torch::Tensor b = section(back, "w")[0].second.clone().requires_grad_(true);
    auto opt_b = make(b);
    opt_b->load_state(section(back, "optimizer"));
    set_cpu_rng_state(section(back, "meta")[0].second);
    EXPECT_TRUE(torch::equal(torch::randn({4}), noise_a)) << kind;
    train_steps(b, *opt_b, 2);
    EXPECT_TRUE(torch::equal(a, b)) << kind;
  }
}

TEST(Checkpoint, ManagerKeepsTheLastKAndTheBest) {
  testing::ScratchDir dir;
  CheckpointManager manager(dir.file("ckpt"), 2);
  EXPECT_FALSE(manager.latest().has_value());
  const double metrics[] = {0.5, 0.9, 0.7, 0.6};
  for (int e = 1; e <= 4; ++e)
    manager.save(e, 100 * e, {{"meta", {{"epoch", torch::tensor(int64_t{e})}}}}, metrics[e - 1]);
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir.file("ckpt")))
    files.push_back(f.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"best.pt", "checkpoint_e0003_u0000000300.pt",
                                             "checkpoint_e0004_u0000000400.pt"}));
  EXPECT_EQ(section(load_checkpoint(dir.file("ckpt/best.pt")), "meta")[0].second.item<int64_t>(), 2);
  ASSERT_TRUE(manager.latest().has_value());
  EXPECT_NE(manager.latest()->find("checkpoint_e0004_u0000000400.pt"), std::string::npos);
  // A checkpoint taken inside the next epoch sorts after the last epoch-end one.
  manager.save(4, 450, {{"meta", {{"epoch", torch::tensor(int64_t{4})}}}});
  EXPECT_NE(manager.latest()->find("checkpoint_e0004_u0000000450.pt"), std::string::npos);
}

}  // namespace convnets
