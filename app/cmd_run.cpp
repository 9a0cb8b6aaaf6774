// The run modes of the seeds as subcommands: train, train_and_eval, eval, predict, training_benchmark and
// inference_benchmark. They share one set of configuration keys (--<key>, see src/train/train_config.h);
// precedence: the architecture's recipe defaults < --recipe FILE < flags. eval / predict /
// inference_benchmark read <model_dir>/config.yaml as their recipe when no --recipe is given, so they see
// the trained model's architecture and classes.
#include <filesystem>
#include <iostream>
#include <map>

#include "commands.h"
#include "data/image_limits.h"
#include "infer/inference.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace convnets::app {
namespace {

struct RunArgs {
  std::string recipe;
  std::map<std::string, std::string> values;
  std::map<std::string, CLI::Option*> options;
};

TrainConfig resolve(const RunArgs& args, bool use_model_dir_config) {
  std::vector<std::pair<std::string, std::string>> flags;
  for (const auto& [key, option] : args.options) {
    if (option->count() > 0) flags.emplace_back(key, args.values.at(key));
  }
  std::string recipe = args.recipe;
  RecipeSource source = RecipeSource::kUser;
  if (recipe.empty() && use_model_dir_config) {
    for (const auto& [k, v] : flags) {
      if (k == "model_dir" && std::filesystem::exists(std::filesystem::path(v) / "config.yaml")) {
        recipe = (std::filesystem::path(v) / "config.yaml").string();
        source = RecipeSource::kModelDirConfig;  // possibly someone else's: it cannot choose where we write
      }
    }
  }
  return resolve_config(recipe, flags, source);
}

CLI::App* add_run_command(CLI::App& app, const std::string& name, const std::string& help,
                          std::function<int(const TrainConfig&)> run, bool use_model_dir_config) {
  auto* cmd = app.add_subcommand(name, help);
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("--recipe", args->recipe, "YAML recipe file (see recipes/); flags override its keys")
      ->check(CLI::ExistingFile);
  for (const auto& key : config_keys()) {
    std::string& slot = args->values[key.name];
    const std::string text = key.help + " [" + key.type + "]";
    CLI::Option* opt = key.is_bool ? cmd->add_flag("--" + key.name + "{true}", slot, text)
                                   : cmd->add_option("--" + key.name, slot, text);
    if (!key.is_bool) {
      opt->type_name(key.type == "integer"           ? "INT"
                     : key.type == "number"          ? "FLOAT"
                     : key.type == "list of numbers" ? "LIST"
                     : key.type == "text"            ? "TEXT"
                                                     : "CHOICE");
    }
    opt->group(key.name.rfind("lr_", 0) == 0 ? "Learning rate" : "Configuration");
    args->options[key.name] = opt;
  }
  cmd->callback([args, run, use_model_dir_config] {
    const TrainConfig config = resolve(*args, use_model_dir_config);
    set_max_image_pixels(config.max_image_pixels);
    const int rc = run(config);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
  return cmd;
}

}  // namespace

void add_run_commands(CLI::App& app) {
  add_run_command(
      app, "train", "Train (resumes from the newest checkpoint in --model_dir)",
      [](const TrainConfig& c) {
        run_training(c, TrainMode::kTrain);
        return 0;
      },
      false);
  add_run_command(
      app, "train_and_eval",
      "Train, evaluating every --epochs_between_eval epochs and at the end (raw and EMA weights)",
      [](const TrainConfig& c) {
        run_training(c, TrainMode::kTrainAndEval);
        return 0;
      },
      false);
  add_run_command(
      app, "eval", "Evaluate --weights (or the newest checkpoint in --model_dir) on the validation split",
      [](const TrainConfig& c) {
        run_eval_mode(c);
        return 0;
      },
      true);
  add_run_command(
      app, "predict", "Top-k classes of --to_predict (an image or a directory of images)",
      [](const TrainConfig& c) {
        run_predict(c);
        return 0;
      },
      true);
  add_run_command(
      app, "training_benchmark",
      "Training throughput (synthetic data without --data_dir); --warmup_steps are left out",
      [](const TrainConfig& c) {
        run_training(c, TrainMode::kBenchmark);
        return 0;
      },
      false);
  add_run_command(
      app, "inference_benchmark",
      "Forward-pass throughput and latency percentiles over --batch_sizes (--num_iter batches with "
      "--iter_unit batch, else 100)",
      [](const TrainConfig& c) {
        run_inference_benchmark(c);
        return 0;
      },
      true);
}

}  // namespace convnets::app
