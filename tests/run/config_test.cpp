#include "run/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "test_support.h"

namespace convnets {
namespace {

std::string write(const testing::ScratchDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, DefaultsFollowTheArchitecturesRecipe) {
  const RunConfig r = default_config("resnet50");
  EXPECT_EQ(r.optim.optimizer, OptimizerKind::kMomentum);
  EXPECT_DOUBLE_EQ(r.optim.momentum, 0.875);
  EXPECT_DOUBLE_EQ(r.optim.lr_init, 0.256);
  EXPECT_EQ(r.optim.lr_reference_batch, 256);
  EXPECT_EQ(r.schedule.lr_clock, LrClock::kGlobal);
  EXPECT_DOUBLE_EQ(r.optim.weight_decay, 3.0517578125e-05);
  const RunConfig e = default_config("efficientnet_b4");
  EXPECT_EQ(e.optim.optimizer, OptimizerKind::kRmsprop);
  EXPECT_EQ(e.optim.lr_reference_batch, 128);
  EXPECT_EQ(e.schedule.lr_clock, LrClock::kAfterWarmup);
  EXPECT_DOUBLE_EQ(e.optim.weight_decay, 1e-5);  // Keras l2(5e-6) in the PyTorch convention
  EXPECT_EQ(e.optim.weight_decay_exclude, WeightDecayExclude::kBatchNormAndDepthwise);
  EXPECT_DOUBLE_EQ(e.optim.ema_decay, 0.9999);
  EXPECT_DOUBLE_EQ(e.mixing.mixup_alpha, 0.2);
  EXPECT_DOUBLE_EQ(default_config("efficientnet_b0").mixing.mixup_alpha, 0.0);
}

TEST(RunConfig, FlagsOverrideTheRecipeWhichOverridesTheDefaults) {
  testing::ScratchDir dir;
  const std::string recipe = write(dir, "r.yaml",
                                   "arch: efficientnet_b0\n"
                                   "batch_size: 64\n"
                                   "lr_init: 0.01\n"
                                   "amp: true\n"
                                   "lr_step_epochs: [3, 6]\n");
  const RunConfig c = resolve_config(recipe, {{"lr_init", "0.02"}, {"num_iter", "7"}});
  EXPECT_EQ(c.model.arch, "efficientnet_b0");
  EXPECT_EQ(c.optim.optimizer, OptimizerKind::kRmsprop);  // from the architecture's defaults
  EXPECT_EQ(c.iterations.batch_size, 64);                 // from the recipe
  EXPECT_TRUE(c.precision.amp);
  EXPECT_EQ(c.schedule.lr_step_epochs, (std::vector<double>{3, 6}));
  EXPECT_DOUBLE_EQ(c.optim.lr_init, 0.02);  // the flag wins
  EXPECT_EQ(c.iterations.num_iter, 7);
  // --arch on the command line picks the defaults even when the recipe names another architecture.
  const RunConfig r = resolve_config(recipe, {{"arch", "resnet18"}});
  EXPECT_EQ(r.optim.optimizer, OptimizerKind::kMomentum);
  EXPECT_EQ(r.iterations.batch_size, 64);
}

// log_filename used to accept "../../home/user/.bashrc" (from a recipe, or from the config.yaml of a
// downloaded run that eval reads back); keys a run writes outside model_dir are not taken from config.yaml.
TEST(RunConfig, OutputPathsStayInsideModelDir) {
  testing::ScratchDir dir;
  const std::string escape = write(dir, "escape.yaml", "log_filename: ../../home/user/.bashrc\n");
  const std::string msg = error_of([&] { resolve_config(escape, {}); });
  EXPECT_NE(msg.find("log_filename"), std::string::npos) << msg;
  EXPECT_NE(msg.find("plain file name"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { resolve_config("", {{"log_filename", "/tmp/log.json"}}); }), "");
  const std::string downloaded = write(dir, "config.yaml",
                                       "arch: resnet18\npredict_output: /tmp/owned.json\n"
                                       "data_idx_dir: /tmp/owned_idx\nmodel_dir: /tmp/elsewhere\n");
  const RunConfig c =
      resolve_config(downloaded, {{"model_dir", dir.path().string()}}, RecipeSource::kModelDirConfig);
  EXPECT_EQ(c.model.arch, "resnet18");  // the rest of the file is used
  EXPECT_EQ(c.predict.predict_output, "");
  EXPECT_EQ(c.data.data_idx_dir, "");
  EXPECT_EQ(c.output.model_dir, dir.path().string());
  // A recipe the user names is trusted as before.
  EXPECT_EQ(resolve_config(downloaded, {}).predict.predict_output, "/tmp/owned.json");
}

// Duplicate keys used to be accepted silently (the last won); recipes that are not regular files hung.
TEST(RunConfig, DuplicateKeysAndNonRegularRecipesAreErrors) {
  testing::ScratchDir dir;
  const std::string twice = write(dir, "twice.yaml", "lr_init: 0.1\nbatch_size: 8\nlr_init: 0.2\n");
  const std::string msg = error_of([&] { resolve_config(twice, {}); });
  EXPECT_NE(msg.find("key 'lr_init' is given twice (lines 1 and 3)"), std::string::npos) << msg;
  const std::string fifo = dir.file("recipe.yaml");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { resolve_config(fifo, {}); }).find("a FIFO"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_config(dir.path().string(), {}); }).find("a directory"),
            std::string::npos);
}

TEST(RunConfig, BadKeysAndValuesAreNamed) {
  testing::ScratchDir dir;
  const std::string typo = write(dir, "typo.yaml", "batch_sise: 64\n");
  EXPECT_NE(error_of([&] { resolve_config(typo, {}); }).find("unknown key 'batch_sise'"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_config(typo, {}); }).find("typo.yaml"), std::string::npos);
  const std::string msg = error_of([&] { resolve_config("", {{"batch_size", "lots"}}); });
  EXPECT_NE(msg.find("flag --batch_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"optimizer", "adam"}});
            }).find("momentum | rmsprop | adamw"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"label_smoothing", "1.5"}});
            }).find("[0, 0.99]"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"amp", "maybe"}});
            }).find("true or false"),
            std::string::npos);
  const std::string nested = write(dir, "nested.yaml", "lr_init: {a: 1}\n");
  EXPECT_NE(error_of([&] { resolve_config(nested, {}); }).find("not a map"), std::string::npos);
  const std::string broken = write(dir, "broken.yaml", "lr_init: [1, 2\n");
  EXPECT_NE(error_of([&] { resolve_config(broken, {}); }).find("broken.yaml"), std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"arch", "resnet18"}, {"dropout", "0.3"}});
            }).find("dropout"),
            std::string::npos);
}

TEST(RunConfig, TheWrittenYamlReadsBackToTheSameConfig) {
  testing::ScratchDir dir;
  RunConfig c = resolve_config("", {{"arch", "efficientnet_b0"},
                                    {"data_dir", "/data/with: colon"},
                                    {"lr_init", "0.1234567890123"},
                                    {"batch_sizes", "1,8,64"}});
  const std::string path = write(dir, "config.yaml", config_to_yaml(c));
  const RunConfig back = resolve_config(path, {});
  EXPECT_EQ(config_to_json(back), config_to_json(c));
}

// Sizes and fractions that default to the architecture's are unset, not 0; a 0 still reads as unset, as the
// config.yaml files of earlier versions wrote them, and anything else out of range is an error.
TEST(RunConfig, ArchitectureDefaultsAreUnsetAndAnOldZeroReadsAsUnset) {
  testing::ScratchDir dir;
  const RunConfig fresh = resolve_config("", {{"arch", "resnet18"}});
  EXPECT_FALSE(fresh.train_input.image_size || fresh.eval_input.eval_image_size ||
               fresh.eval_input.eval_crop_pct || fresh.eval_input.eval_batch_size ||
               fresh.train_input.crop_min_area || fresh.exporting.export_image_size);
  const std::string old = write(dir, "old.yaml",
                                "arch: resnet18\nimage_size: 0\neval_image_size: 0\neval_crop_pct: 0\n"
                                "eval_batch_size: 0\ncrop_min_area: 0\nexport_image_size: 0\n");
  const RunConfig read = resolve_config(old, {});
  EXPECT_EQ(config_to_json(read), config_to_json(fresh));
  const RunConfig set = resolve_config("", {{"eval_image_size", "96"}, {"eval_crop_pct", "0.5"}});
  EXPECT_EQ(set.eval_input.eval_image_size, 96);
  EXPECT_EQ(set.eval_input.eval_crop_pct, 0.5);
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"eval_crop_pct", "1.5"}});
            }).find("eval_crop_pct"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_config("", {{"image_size", "-3"}});
            }).find("image_size"),
            std::string::npos);
}

TEST(RunConfig, EveryRecipeInTheRepositoryResolves) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::tests_source_dir() + "/../recipes")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(resolve_config(entry.path().string(), {})) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 9);
}

}  // namespace
}  // namespace convnets
