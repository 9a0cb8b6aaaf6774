// `convnets models`: the zoo with parameter counts, default resolutions and recipes.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "models/model_stats.h"
#include "models/registry.h"

namespace convnets::app {

void add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "List every architecture with its parameter count and defaults");
  auto verbose = std::make_shared<bool>(false);
  cmd->add_flag("-v,--verbose", *verbose,
                "Also print each model's default recipe: its configuration keys and values");
  cmd->callback([verbose] {
    std::printf("%-20s %12s %6s %6s %6s %-12s %-9s %7s  %s\n", "arch", "params", "train", "eval", "crop",
                "crop_mode", "interp", "dropout", "recipe");
    for (const auto& e : model_registry()) {
      const int64_t params = count_parameters(*e.create({}));
      std::printf("%-20s %12lld %6lld %6lld %6.3f %-12s %-9s %7.2f  %s\n", e.name.c_str(),
                  static_cast<long long>(params), static_cast<long long>(e.data.train_size),
                  static_cast<long long>(e.data.eval_size), e.data.crop_pct, crop_mode_name(e.data.crop_mode),
                  interpolation_name(e.data.interpolation), e.dropout, e.recipe.name.c_str());
      if (!*verbose) continue;
      std::string line;
      for (const auto& [key, value] : e.recipe.values) line += (line.empty() ? "" : " ") + key + "=" + value;
      std::printf("    %s\n", line.c_str());
    }
  });
}

}  // namespace convnets::app
