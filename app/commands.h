// Each subcommand of the convnets app registers itself on the CLI11 app and runs from its callback.
#pragma once
#include <CLI/CLI.hpp>

namespace convnets::app {
void add_models_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_prepare_data_command(CLI::App& app);
void add_run_commands(CLI::App& app);
}  // namespace convnets::app
