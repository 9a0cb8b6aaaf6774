// convnets: train, evaluate, benchmark and run ConvNet image classifiers.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "convnets: train, evaluate, benchmark and export ConvNet image classifiers in native C++ (LibTorch); "
      "`convnets models` lists the architectures"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  convnets::app::add_models_command(app);
  convnets::app::add_info_command(app);
  convnets::app::add_prepare_data_command(app);
  convnets::app::add_run_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
