// `convnets info`: parameters, multiply-accumulates and a per-stage table for one architecture.
#include <cstdio>

#include "commands.h"
#include "models/model_stats.h"
#include "models/registry.h"

namespace convnets::app {

namespace {
std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s;
  for (auto d : shape) {
    if (!s.empty()) s += 'x';
    s += std::to_string(d);
  }
  return s;
}
}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("info", "Parameters, multiply-accumulates and per-stage shapes of an architecture");
  struct Args {
    std::string arch;
    int64_t image_size = 0;
    int64_t num_classes = 1000;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--arch", args->arch, "Architecture")->required()->check(CLI::IsMember(model_names()));
  cmd->add_option("--image_size,--image-size", args->image_size,
                  "Input resolution (default: the architecture's eval resolution)")
      ->check(CLI::Range(int64_t{32}, int64_t{4096}));
  cmd->add_option("--num_classes,--num-classes", args->num_classes, "Classifier outputs")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->callback([args] {
    const ModelEntry& entry = find_model(args->arch);
    const int64_t size = args->image_size > 0 ? args->image_size : entry.data.eval_size;
    ModelOverrides overrides;
    overrides.num_classes = args->num_classes;
    const auto rows = profile_stages(args->arch, size, overrides);
    int64_t params = 0, macs = 0;
    for (const auto& r : rows) {
      params += r.parameters;
      macs += r.macs;
    }
    std::printf("%s at %lldx%lld, %lld classes\n", entry.name.c_str(), static_cast<long long>(size),
                static_cast<long long>(size), static_cast<long long>(args->num_classes));
    std::printf("parameters: %lld (trainable)\n", static_cast<long long>(params));
    std::printf("MACs:       %.3f G (conv + linear, one image)\n\n", static_cast<double>(macs) / 1e9);
    std::printf("%-12s %-14s %12s %12s\n", "stage", "output", "params", "MMACs");
    for (const auto& r : rows) {
      std::printf("%-12s %-14s %12lld %12.2f\n", r.name.c_str(), shape_string(r.output_shape).c_str(),
                  static_cast<long long>(r.parameters), static_cast<double>(r.macs) / 1e6);
    }
  });
}

}  // namespace convnets::app
