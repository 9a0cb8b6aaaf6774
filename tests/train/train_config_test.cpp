#include "train/train_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "test_support.h"
#include "train/run_setup.h"
#include "train/trainer.h"

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

TEST(TrainConfig, DefaultsFollowTheArchitecturesRecipe) {
  const TrainConfig r = default_config("resnet50");
  EXPECT_EQ(r.optimizer, "momentum");
  EXPECT_DOUBLE_EQ(r.momentum, 0.875);
  EXPECT_DOUBLE_EQ(r.lr_init, 0.256);
  EXPECT_EQ(r.lr_reference_batch, 256);
  EXPECT_EQ(r.lr_clock, "global");
  EXPECT_DOUBLE_EQ(r.weight_decay, 3.0517578125e-05);
  const TrainConfig e = default_config("efficientnet_b4");
  EXPECT_EQ(e.optimizer, "rmsprop");
  EXPECT_EQ(e.lr_reference_batch, 128);
  EXPECT_EQ(e.lr_clock, "after_warmup");
  EXPECT_DOUBLE_EQ(e.weight_decay, 1e-5);  // Keras l2(5e-6) in the PyTorch convention
  EXPECT_EQ(e.weight_decay_exclude, "bn_and_depthwise");
  EXPECT_DOUBLE_EQ(e.ema_decay, 0.9999);
  EXPECT_DOUBLE_EQ(e.mixup_alpha, 0.2);
  EXPECT_DOUBLE_EQ(default_config("efficientnet_b0").mixup_alpha, 0.0);
}

TEST(TrainConfig, FlagsOverrideTheRecipeWhichOverridesTheDefaults) {
  testing::ScratchDir dir;
  const std::string recipe = write(dir, "r.yaml",
                                   "arch: efficientnet_b0\n"
                                   "batch_size: 64\n"
                                   "lr_init: 0.01\n"
                                   "amp: true\n"
                                   "lr_step_epochs: [3, 6]\n");
  const TrainConfig c = resolve_config(recipe, {{"lr_init", "0.02"}, {"num_iter", "7"}});
  EXPECT_EQ(c.arch, "efficientnet_b0");
  EXPECT_EQ(c.optimizer, "rmsprop");  // from the architecture's defaults
  EXPECT_EQ(c.batch_size, 64);        // from the recipe
  EXPECT_TRUE(c.amp);
  EXPECT_EQ(c.lr_step_epochs, (std::vector<double>{3, 6}));
  EXPECT_DOUBLE_EQ(c.lr_init, 0.02);  // the flag wins
  EXPECT_EQ(c.num_iter, 7);
  // --arch on the command line picks the defaults even when the recipe names another architecture.
  const TrainConfig r = resolve_config(recipe, {{"arch", "resnet18"}});
  EXPECT_EQ(r.optimizer, "momentum");
  EXPECT_EQ(r.batch_size, 64);
}

// log_filename used to accept "../../home/user/.bashrc" (from a recipe, or from the config.yaml of a
// downloaded run that eval reads back); keys a run writes outside model_dir are not taken from config.yaml.
TEST(TrainConfig, OutputPathsStayInsideModelDir) {
  testing::ScratchDir dir;
  const std::string escape = write(dir, "escape.yaml", "log_filename: ../../home/user/.bashrc\n");
  const std::string msg = error_of([&] { resolve_config(escape, {}); });
  EXPECT_NE(msg.find("log_filename"), std::string::npos) << msg;
  EXPECT_NE(msg.find("plain file name"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { resolve_config("", {{"log_filename", "/tmp/log.json"}}); }), "");
  const std::string downloaded = write(dir, "config.yaml",
                                       "arch: resnet18\npredict_output: /tmp/owned.json\n"
                                       "data_idx_dir: /tmp/owned_idx\nmodel_dir: /tmp/elsewhere\n");
  const TrainConfig c =
      resolve_config(downloaded, {{"model_dir", dir.path().string()}}, RecipeSource::kModelDirConfig);
  EXPECT_EQ(c.arch, "resnet18");  // the rest of the file is used
  EXPECT_EQ(c.predict_output, "");
  EXPECT_EQ(c.data_idx_dir, "");
  EXPECT_EQ(c.model_dir, dir.path().string());
  // A recipe the user names is trusted as before.
  EXPECT_EQ(resolve_config(downloaded, {}).predict_output, "/tmp/owned.json");
}

// Duplicate keys used to be accepted silently (the last won); recipes that are not regular files hung.
TEST(TrainConfig, DuplicateKeysAndNonRegularRecipesAreErrors) {
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

TEST(TrainConfig, BadKeysAndValuesAreNamed) {
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

TEST(TrainConfig, TheWrittenYamlReadsBackToTheSameConfig) {
  testing::ScratchDir dir;
  TrainConfig c = resolve_config("", {{"arch", "efficientnet_b0"},
                                      {"data_dir", "/data/with: colon"},
                                      {"lr_init", "0.1234567890123"},
                                      {"batch_sizes", "1,8,64"}});
  const std::string path = write(dir, "config.yaml", config_to_yaml(c));
  const TrainConfig back = resolve_config(path, {});
  EXPECT_EQ(config_to_json(back), config_to_json(c));
}

TEST(TrainConfig, EveryRecipeInTheRepositoryResolves) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::tests_source_dir() + "/../recipes")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(resolve_config(entry.path().string(), {})) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 9);
}

TEST(ProgressiveStages, FollowTheEfficientNetV2Rule) {
  TrainConfig c = default_config("efficientnet_b0");
  c.n_stages = 4;
  c.base_image_size = 128;
  c.randaug_magnitude = 15;
  c.base_randaug_magnitude = 5;
  c.mixup_alpha = 0.3;
  c.base_mixup = 0.0;
  // 10 epochs, 4 stages: 2 epochs each, the last stage runs to the end.
  const int64_t expected_stage[] = {0, 0, 1, 1, 2, 2, 3, 3, 3, 3};
  for (int64_t e = 0; e < 10; ++e) EXPECT_EQ(stage_for_epoch(c, 300, e, 10).stage, expected_stage[e]) << e;
  const StagePlan first = stage_for_epoch(c, 300, 0, 10);
  EXPECT_EQ(first.image_size, 171);  // int(128 + 172 * 1 / 4): stage 0 is not the base size
  EXPECT_DOUBLE_EQ(first.randaug_magnitude, 5);
  EXPECT_DOUBLE_EQ(first.mixup_alpha, 0.0);
  const StagePlan last = stage_for_epoch(c, 300, 9, 10);
  EXPECT_EQ(last.image_size, 300);
  EXPECT_DOUBLE_EQ(last.randaug_magnitude, 15);
  EXPECT_DOUBLE_EQ(last.mixup_alpha, 0.3);
  EXPECT_DOUBLE_EQ(stage_for_epoch(c, 300, 4, 10).randaug_magnitude, 5 + 10.0 * 2 / 3);
  c.n_stages = 1;
  EXPECT_EQ(stage_for_epoch(c, 224, 5, 10).image_size, 224);
}

}  // namespace
}  // namespace convnets

namespace convnets {

// What eval, train_and_eval and predict resize with, per architecture: each registry entry's eval size,
// interpolation and crop rule (ResNet: shorter side to size * 256 / 224, centre crop; EfficientNet: centre
// S / (S + 32) of the shorter side, then resize), whole-image decoding; and the config's overrides.
TEST(RunSetup, EvalTransformOptionsFollowEachArchitecture) {
  for (const auto& name : model_names()) {
    const ModelEntry& e = find_model(name);
    const EvalTransformOptions o = eval_transform_options(default_config(name));
    EXPECT_EQ(o.size, e.data.eval_size) << name;
    EXPECT_EQ(o.interpolation, parse_interpolation(e.data.interpolation)) << name;
    EXPECT_EQ(o.interpolation, e.family == "resnet" ? Interpolation::kBilinear : Interpolation::kBicubic)
        << name;
    EXPECT_FALSE(o.dct_scaling) << name;
    if (e.family == "resnet") {
      EXPECT_EQ(o.crop, EvalCrop::kResizeShorterThenCenter) << name;
      EXPECT_EQ(o.resize_shorter, e.data.eval_size * 256 / 224) << name;
    } else {
      EXPECT_EQ(o.crop, EvalCrop::kCenterFractionThenResize) << name;
      EXPECT_DOUBLE_EQ(o.crop_fraction, static_cast<double>(e.data.eval_size) / (e.data.eval_size + 32))
          << name;
    }
    // And the loader of the eval split gets exactly these.
    const LoaderOptions lo = eval_loader_options(default_config(name));
    EXPECT_EQ(lo.eval_transform.interpolation, o.interpolation) << name;
    EXPECT_EQ(lo.eval_transform.size, o.size) << name;
    EXPECT_FALSE(lo.train) << name;
  }
  TrainConfig c = default_config("efficientnet_b3");
  c.interpolation = "bilinear";
  c.eval_image_size = 128;
  EXPECT_EQ(eval_transform_options(c).interpolation, Interpolation::kBilinear);
  EXPECT_EQ(eval_transform_options(c).size, 128);
}

}  // namespace convnets
