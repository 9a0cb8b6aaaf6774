// The run modes of the seeds as subcommands: train, train_and_eval, eval, predict, training_benchmark and
// inference_benchmark. They share one set of configuration keys (--<key>, see src/run/config.h); each mode
// accepts the key groups it uses, so its --help lists only those. Precedence: the architecture's recipe <
// --recipe FILE < flags. eval / predict / inference_benchmark read <model_dir>/config.yaml as their recipe
// when no --recipe is given, so they see the trained model's architecture and classes.
#include <malloc.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "commands.h"
#include "data/image_limits.h"
#include "infer/export_model.h"
#include "infer/modes.h"
#include "run/config.h"
#include "train/trainer.h"

namespace convnets::app {
namespace {

using K = KeyGroup;

struct RunArgs {
  std::string recipe;
  std::map<std::string, std::string> values;
  std::map<std::string, CLI::Option*> options;
  std::set<std::string> booleans;
};

RunConfig resolve(const RunArgs& args, bool use_model_dir_config) {
  std::vector<std::pair<std::string, std::string>> flags;
  for (const auto& [key, option] : args.options) {
    if (option->count() == 0) continue;
    const std::string& value = args.values.at(key);
    flags.emplace_back(key,
                       value.empty() && args.booleans.count(key) ? "true" : value);  // --amp = --amp=true
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

// A data-parallel collective failed: the process cannot count on its communicator's destructors to return,
// so it reports which ranks stopped answering and exits at once.
void exit_on_collective_fault(const std::string& report) {
  std::fflush(stdout);
  std::fprintf(stderr, "\n%s\n", report.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

RunContext app_context() {
  RunContext context;
  context.console = &stdio_console();
  context.on_collective_fault = exit_on_collective_fault;
  return context;
}

// Inference allocates and frees the same large activations every forward. glibc serves blocks above its mmap
// threshold with fresh mappings and returns freed heap tops to the kernel, so every forward page-faults and
// zero-fills its activations again (measured: 40% of an EfficientNet-B0 batch-32 forward on 2 cores). The
// reader modes keep freed memory for reuse instead, as ONNX Runtime's arena does.
void reuse_freed_memory() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

struct Mode {
  std::string name, help;
  std::set<KeyGroup> groups;  // the keys it takes as flags (a recipe or config.yaml may hold them all)
  bool use_model_dir_config;  // reads <model_dir>/config.yaml when no --recipe is given
  std::function<void(const RunConfig&)> run;
};

// Every mode's name and key groups, for telling a user which mode takes a key the current one does not.
std::vector<std::pair<std::string, std::set<KeyGroup>>>& mode_groups() {
  static std::vector<std::pair<std::string, std::set<KeyGroup>>> modes;
  return modes;
}

// Keys that mean the same thing on the training and the reading side.
const std::map<std::string, std::string>& counterpart_keys() {
  static const std::map<std::string, std::string> keys = {{"image_size", "eval_image_size"},
                                                          {"eval_image_size", "image_size"}};
  return keys;
}

// Earlier spellings of a mode's keys, renamed when their names became configuration keys of their own:
// scripts written for them get the new name (mode, old key) -> new key.
const std::map<std::pair<std::string, std::string>, std::string>& renamed_keys() {
  static const std::map<std::pair<std::string, std::string>, std::string> keys = {
      {{"export", "output"}, "onnx_output"},
      {{"export", "model_name"}, "triton_model_name"},
      {{"export", "topk"}, "export_topk"}};
  return keys;
}

// The error for arguments a mode does not take: a renamed key says its new name; a configuration key of
// another mode says which modes take it and what this mode uses instead; anything else is an unknown option.
std::string unexpected_arguments_message(const std::string& mode, const std::set<KeyGroup>& groups,
                                         const std::vector<std::string>& extras) {
  for (const std::string& arg : extras) {
    if (arg.rfind("--", 0) != 0) continue;
    const std::string key =
        arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    if (const auto renamed = renamed_keys().find({mode, key}); renamed != renamed_keys().end())
      return mode + " does not take --" + key + ": it was renamed, use --" + renamed->second;
    const auto& keys = config_keys();
    const auto info =
        std::find_if(keys.begin(), keys.end(), [&](const ConfigKeyInfo& k) { return k.name == key; });
    if (info == keys.end()) return mode + ": unknown option --" + key + " (see convnets " + mode + " --help)";
    std::string takers;
    for (const auto& [name, g] : mode_groups()) {
      if (g.count(info->group)) takers += (takers.empty() ? "" : ", ") + name;
    }
    std::string message = mode + " does not take --" + key + " (a key of the " +
                          key_group_title(info->group) + " group, " +
                          (takers.empty() ? "which no mode takes as a flag" : "taken by " + takers) + ")";
    const auto other = counterpart_keys().find(key);
    if (other != counterpart_keys().end()) {
      const auto o = std::find_if(keys.begin(), keys.end(),
                                  [&](const ConfigKeyInfo& k) { return k.name == other->second; });
      if (o != keys.end() && groups.count(o->group)) message += "; " + mode + " uses --" + other->second;
    }
    return message;
  }
  std::string all;
  for (const auto& a : extras) all += (all.empty() ? "" : " ") + a;
  return mode + ": unexpected arguments: " + all;
}

const char* type_name(KeyType kind) {
  switch (kind) {
    case KeyType::kInteger:
      return "INT";
    case KeyType::kNumber:
      return "FLOAT";
    case KeyType::kBool:
      return "[BOOL]";
    case KeyType::kText:
      return "TEXT";
    case KeyType::kChoice:
      return "CHOICE";
    case KeyType::kNumberList:
    case KeyType::kIntegerList:
      return "LIST";
  }
  return "VALUE";
}

void add_mode(CLI::App& app, const Mode& mode) {
  auto* cmd = app.add_subcommand(mode.name, mode.help);
  mode_groups().emplace_back(mode.name, mode.groups);
  cmd->allow_extras();  // reported by the callback, naming the mode that takes a misplaced key
  auto args = std::make_shared<RunArgs>();
  cmd->add_option("--recipe", args->recipe, "YAML recipe file (see recipes/); flags override its keys")
      ->check(CLI::ExistingFile);
  for (const auto& key : config_keys()) {
    if (!mode.groups.count(key.group)) continue;
    std::string& slot = args->values[key.name];
    const std::string text = key.help + " [" + key.type + "]";
    CLI::Option* opt = cmd->add_option("--" + key.name, slot, text);
    if (key.is_bool()) {
      opt->expected(0, 1)->type_name("[BOOL]");  // --amp, --amp=false, --amp true
      args->booleans.insert(key.name);
    } else {
      opt->type_name(type_name(key.kind));
    }
    opt->group(key_group_title(key.group));
    args->options[key.name] = opt;
  }
  cmd->callback([args, mode, cmd] {
    if (!cmd->remaining().empty())
      throw std::invalid_argument(unexpected_arguments_message(mode.name, mode.groups, cmd->remaining()));
    const RunConfig config = resolve(*args, mode.use_model_dir_config);
    set_max_image_pixels(config.data.max_image_pixels);
    mode.run(config);
  });
}

}  // namespace

void add_run_commands(CLI::App& app) {
  const std::set<KeyGroup> training = {
      K::kModel,        K::kInit,        K::kData,   K::kTrainInput,  K::kEvalInput,  K::kIterations,
      K::kOptimisation, K::kSchedule,    K::kMixing, K::kProgressive, K::kPrecision,  K::kCpu,
      K::kParallel,     K::kCheckpoints, K::kOutput, K::kQat,         K::kCalibration};
  std::set<KeyGroup> benchmark = training;
  benchmark.erase(K::kEvalInput);
  benchmark.erase(K::kCheckpoints);
  auto train = [](TrainMode m) { return [m](const RunConfig& c) { run_training(c, m, app_context()); }; };
  add_mode(app, {"train", "Train (resumes from the newest checkpoint in --model_dir)", training, false,
                 train(TrainMode::kTrain)});
  add_mode(app, {"train_and_eval",
                 "Train, evaluating every --epochs_between_eval epochs and at the end (raw and EMA weights)",
                 training, false, train(TrainMode::kTrainAndEval)});
  add_mode(app, {"eval",
                 "Evaluate --weights (or the newest checkpoint in --model_dir) on the validation split",
                 {K::kModel, K::kWeights, K::kData, K::kEvalInput, K::kIterations, K::kPrecision, K::kCpu,
                  K::kParallel, K::kOutput, K::kInt8},
                 true,
                 [](const RunConfig& c) {
                   reuse_freed_memory();
                   run_eval_mode(c, app_context());
                 }});
  add_mode(app, {"predict",
                 "Top-k classes of --to_predict (an image or a directory of images)",
                 {K::kModel, K::kWeights, K::kData, K::kEvalInput, K::kPrecision, K::kCpu, K::kOutput,
                  K::kPredict, K::kInt8},
                 true,
                 [](const RunConfig& c) {
                   reuse_freed_memory();
                   const RunContext context = app_context();
                   const PredictResult r = run_predict(c, context);
                   if (!r.predictions.empty()) context.console->info(format_predictions(r, c.predict.output));
                   c.predict.output == PredictFormat::kText ? context.console->info(r.summary)
                                                            : context.console->diagnostic(r.summary);
                   if (r.predictions.empty())
                     throw std::runtime_error("none of the " + std::to_string(r.files) +
                                              " images could be read (each named above): nothing predicted");
                   if (!r.unreadable.empty()) {
                     throw std::runtime_error(
                         std::to_string(r.unreadable.size()) + " of " + std::to_string(r.files) +
                         " images could not be read (listed above); the others were predicted");
                   }
                 }});
  add_mode(app, {"training_benchmark",
                 "Training throughput (synthetic data without --data_dir); --warmup_steps are left out",
                 benchmark, false, train(TrainMode::kBenchmark)});
  add_mode(app,
           {"inference_benchmark",
            "Forward-pass throughput and latency percentiles over --batch_sizes (--num_iter batches with "
            "--iter_unit batch, else 100)",
            {K::kModel, K::kWeights, K::kEvalInput, K::kIterations, K::kPrecision, K::kCpu, K::kOutput,
             K::kBenchmark, K::kInt8},
            true,
            [](const RunConfig& c) {
              reuse_freed_memory();
              run_inference_benchmark(c, app_context());
            }});
  add_mode(
      app,
      {"quantize",
       "Calibrate int8: --calibration_images images of --data_dir through the model (raw and EMA weights); "
       "writes <model_dir>/quantization.safetensors, which eval and predict run with int8",
       {K::kModel, K::kWeights, K::kData, K::kEvalInput, K::kPrecision, K::kCpu, K::kOutput, K::kCalibration},
       true,
       [](const RunConfig& c) {
         reuse_freed_memory();
         run_quantize(c, app_context());
       }});
  add_mode(app,
           {"export",
            "Write the model's inference form as ONNX (and a Triton model repository) from --weights or the "
            "newest checkpoint in --model_dir",
            {K::kModel, K::kWeights, K::kData, K::kEvalInput, K::kOutput, K::kExport, K::kInt8},
            true,
            [](const RunConfig& c) { run_export(c, app_context()); }});
}

}  // namespace convnets::app
