#include "train/optimizers.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "run/config.h"
#include "test_support.h"
#include "train/lr_schedule.h"
#include "train/param_groups.h"
#include "util/safetensors.h"

namespace convnets {
namespace {

nlohmann::json schedule_json(const LrSchedule& s) {
  const char* kinds[] = {"constant", "cosine", "step", "exponential"};
  return {{"kind", kinds[static_cast<int>(s.kind)]},
          {"base", s.base},
          {"warmup", s.warmup_steps},
          {"after_warmup", s.clock_after_warmup},
          {"T", s.decay_steps},
          {"boundaries", s.boundaries},
          {"multipliers", s.multipliers},
          {"interval", s.decay_interval}};
}

// The recipes' schedules as production builds them (LrSchedule::from_config): ResNet TF1 (warmup from 0,
// the decay clock from step 0; cosine over every step, or the 30/60/80/90-epoch steps) and EfficientNet TF2
// (the decay clock after warmup; cosine over the epochs after warmup, or 0.97 every 2.4 epochs).
LrSchedule resnet_tf1(double base, int64_t steps_per_epoch, double warmup_epochs, int64_t total_steps,
                      bool cosine) {
  ScheduleConfig c = default_config("resnet50").schedule;
  c.lr_warmup_epochs = warmup_epochs;
  c.lr_schedule = cosine ? LrScheduleKind::kCosine : LrScheduleKind::kStep;
  return LrSchedule::from_config(c, base, steps_per_epoch, total_steps);
}

LrSchedule efficientnet_tf2(double base, int64_t updates_per_epoch, double warmup_epochs, int64_t max_epochs,
                            const std::string& decay) {
  RunConfig config = default_config("efficientnet_b0");
  set_config_value(config, "lr_schedule", decay, "test");
  config.schedule.lr_warmup_epochs = warmup_epochs;
  return LrSchedule::from_config(config.schedule, base, updates_per_epoch, max_epochs * updates_per_epoch);
}

}  // namespace

// 300-step trajectories of every optimizer under every recipe schedule equal the spec's formulas (float64).
TEST(Optimizers, TrajectoriesMatchPythonReference) {
  torch::manual_seed(0);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor w0 = torch::randn({40}, f64), a = torch::rand({40}, f64) + 0.1,
                      b = torch::randn({40}, f64);
  struct Case {
    std::string name, optimizer;
    LrSchedule schedule;
    double weight_decay;
  };
  const int64_t steps = 300;
  std::vector<Case> cases = {
      {"rn50_sgd_cosine", "sgd", resnet_tf1(0.256 * 2048 / 256, 3, 8, steps, true), 3.0517578125e-05},
      {"rn50_sgd_step", "sgd", resnet_tf1(0.1, 1, 5, steps, false), 1e-4},
      {"effnet_rmsprop_cosine", "rmsprop", efficientnet_tf2(0.016, 2, 5, 150, "cosine"), 1e-5},
      {"effnet_rmsprop_exp", "rmsprop", efficientnet_tf2(0.016, 4, 5, 75, "exponential"), 1e-5},
      {"adamw_cosine", "adamw", efficientnet_tf2(0.01, 3, 2, 100, "cosine"), 0.01},
  };
  testing::ScratchDir dir;
  nlohmann::json config;
  for (const auto& c : cases) {
    config[c.name] = {{"optimizer", c.optimizer},
                      {"schedule", schedule_json(c.schedule)},
                      {"weight_decay", c.weight_decay},
                      {"steps", steps},
                      {"momentum", c.optimizer == "sgd" ? 0.875 : 0.9},
                      {"rho", 0.9},
                      {"epsilon", 1e-3}};
  }
  save_safetensors(dir.file("in.safetensors"), {{"w0", w0}, {"a", a}, {"b", b}});
  std::ofstream(dir.file("in.safetensors.json")) << config.dump();
  const std::string cmd = testing::python_exe() + " " + testing::tests_source_dir() +
                          "/python/check_optimizers.py " + dir.file("in.safetensors") + " " +
                          dir.file("ref.safetensors");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::map<std::string, torch::Tensor> ref;
  for (auto& [k, v] : load_safetensors(dir.file("ref.safetensors")).tensors) ref[k] = v;

  for (const auto& c : cases) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    std::vector<ParamGroup> groups = {{{w}, c.weight_decay}};
    std::unique_ptr<Optimizer> opt;
    if (c.optimizer == "sgd") opt = std::make_unique<MomentumSgd>(groups, 0.875);
    if (c.optimizer == "rmsprop") opt = std::make_unique<KerasRmsprop>(groups, 0.9, 0.9, 1e-3);
    if (c.optimizer == "adamw") opt = std::make_unique<AdamW>(groups);
    const auto ref_w = ref.at(c.name + ".w"), ref_lr = ref.at(c.name + ".lr");
    for (int64_t step = 0; step < steps; ++step) {
      const double lr = c.schedule.at(step);
      ASSERT_NEAR(lr, ref_lr[step].item<double>(), 1e-12) << c.name << " step " << step;
      opt->zero_grad();
      (a * w * w + b * torch::sin(w)).sum().backward();
      opt->step(lr);
      ASSERT_LT(testing::rel_error(w.detach(), ref_w[step]), 1e-6) << c.name << " step " << step;
    }
  }
}

TEST(LrSchedule, RecipeClocks) {
  // RN50: warmup from 0, cosine clock from step 0 over all steps.
  const auto rn = resnet_tf1(2.048, 625, 8, 56250, true);
  EXPECT_EQ(rn.warmup_steps, 5000);
  EXPECT_DOUBLE_EQ(rn.at(0), 0.0);
  EXPECT_DOUBLE_EQ(rn.at(2500), 1.024);
  EXPECT_NEAR(rn.at(5000), 2.048 * 0.5 * (1 + std::cos(M_PI * 5000 / 56250)), 1e-12);
  // EfficientNet: the cosine starts after warmup, at the base value.
  const auto eff = efficientnet_tf2(0.32, 156, 5, 500, "cosine");
  EXPECT_DOUBLE_EQ(eff.at(780), 0.32);
  EXPECT_NEAR(eff.at(780 + eff.decay_steps), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(scaled_learning_rate(0.256, 2048, 256), 2.048);
  EXPECT_THROW(efficientnet_tf2(0.1, 1, 1, 2, "linear"), std::invalid_argument);
}

TEST(ParamGroups, RecipeDecaySets) {
  std::vector<std::string> names;
  auto rn50 = create_model("resnet50");
  const auto rn_groups = weight_decay_groups(*rn50, DecayPolicy::kAllButBatchNorm, 1e-4, &names);
  EXPECT_EQ(names.size(), 53u + 2u);  // 53 convs + fc weight and bias
  EXPECT_NE(std::find(names.begin(), names.end(), "fc.bias"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "layer1.0.downsample.1.weight"), names.end());
  int64_t total = 0;
  for (const auto& g : rn_groups) total += static_cast<int64_t>(g.params.size());
  EXPECT_EQ(total, static_cast<int64_t>(rn50->parameters().size()));

  names.clear();
  auto b0 = create_model("efficientnet_b0");
  weight_decay_groups(*b0, DecayPolicy::kAllButBatchNormAndDepthwise, 1e-5, &names);
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("features.2.0.block.0.0.weight"));   // expand conv
  EXPECT_FALSE(has("features.2.0.block.1.0.weight"));  // depthwise kernel
  EXPECT_TRUE(has("features.2.0.block.2.fc1.bias"));   // SE bias is regularised
  EXPECT_FALSE(has("features.2.0.block.0.1.weight"));  // BN gamma
  EXPECT_TRUE(has("classifier.1.bias"));
}

}  // namespace convnets

namespace convnets {

// The schedule production builds (LrSchedule::from_config, as the trainer calls it) for every recipe file,
// against the spec's formulas written out here: linear warmup from 0 over int(updates_per_epoch x warmup
// epochs) updates (none in the QAT recipes); ResNet TF1: cosine over all updates with the clock from update 0 (docs/recipes.md);
// EfficientNet TF2: cosine over the updates after warmup, clock starting after it (§2.4).
TEST(RecipeSchedules, WhatTheTrainerBuildsFollowsTheSpec) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::tests_source_dir() + "/../recipes")) {
    const RunConfig c = resolve_config(entry.path().string(), {});
    if (c.schedule.lr_schedule != LrScheduleKind::kCosine) continue;
    const int64_t world = entry.path().filename().string().find("8gpu") != std::string::npos ? 8 : 1;
    const int64_t batch_size = c.iterations.batch_size, accum = c.optim.grad_accum_steps;
    const int64_t global_batch = batch_size * world * accum;
    const int64_t updates_per_epoch = 1281167 / (batch_size * world) / accum;
    const int64_t total = c.iterations.num_iter * updates_per_epoch;
    const double base =
        c.optim.lr_init * static_cast<double>(global_batch) / static_cast<double>(c.optim.lr_reference_batch);
    const LrSchedule s = LrSchedule::from_config(
        c.schedule, scaled_learning_rate(c.optim.lr_init, global_batch, c.optim.lr_reference_batch),
        updates_per_epoch, total);
    const auto warmup =
        static_cast<int64_t>(static_cast<double>(updates_per_epoch) * c.schedule.lr_warmup_epochs);
    const bool efficientnet = c.model.arch.rfind("efficientnet", 0) == 0;
    auto spec = [&](int64_t step) {
      if (step < warmup) return base * static_cast<double>(step) / static_cast<double>(warmup);
      if (efficientnet) {
        const double horizon = (static_cast<double>(c.iterations.num_iter) - c.schedule.lr_warmup_epochs) *
                               static_cast<double>(updates_per_epoch);
        return base * 0.5 * (1 + std::cos(M_PI * std::min<double>(step - warmup, horizon) / horizon));
      }
      return base * 0.5 * (1 + std::cos(M_PI * std::min<double>(step, total) / total));
    };
    for (int64_t step : {int64_t{0}, warmup / 2, warmup - 1, warmup, warmup + 1, (warmup + total) / 2,
                         total * 3 / 4, total - 1, total}) {
      if (step < 0) continue;  // no warmup (the QAT recipes)
      EXPECT_NEAR(s.at(step), spec(step), 1e-12 * base) << entry.path().filename() << " update " << step;
    }
    EXPECT_NEAR(s.at(total), 0.0, 1e-12) << entry.path().filename() << ": the cosine ends at 0";
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

}  // namespace convnets
