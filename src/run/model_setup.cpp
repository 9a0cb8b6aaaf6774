#include "run/model_setup.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <cstdio>
#include <unordered_map>

#include "models/registry.h"
#include "util/state_dict.h"
#include "util/weights.h"

namespace convnets {

std::string BatchNormConvention::describe() const {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "BatchNorm eps %g, momentum %g (%s)", settings.eps, settings.momentum,
                source.c_str());
  return buf;
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

namespace {
std::optional<double> metadata_number(const WeightsMetadata& m, const std::string& key) {
  const auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  try {
    size_t used = 0;
    const double v = std::stod(it->second, &used);
    if (used == it->second.size() && v > 0 && v < 1) return v;
  } catch (const std::exception&) {
  }
  throw std::runtime_error("weights metadata '" + key + "' = '" + it->second +
                           "': expected a number in (0, 1)");
}
}  // namespace

namespace {

BatchNormConvention resolve_batch_norm(const RunConfig& config, WeightsOrigin origin,
                                       const ForeignLayout* foreign, const WeightsMetadata& metadata) {
  BatchNormConvention bn;
  const ModelEntry& entry = find_model(config.model.arch);
  const std::optional<double> meta_eps = metadata_number(metadata, "convnets.bn_eps");
  const std::optional<double> meta_momentum = metadata_number(metadata, "convnets.bn_momentum");
  const char* library = origin == WeightsOrigin::kTimm ? "timm's" : "torchvision's";
  if (meta_eps && meta_momentum) {
    bn = {{*meta_eps, *meta_momentum}, "weights metadata"};
  } else if (foreign) {
    bn = {foreign->bn, library};
  } else if (origin == WeightsOrigin::kTorchvision || origin == WeightsOrigin::kTimm) {
    bn = {entry.native_bn, library};
  } else {
    bn = {entry.recipe_bn, "recipe"};
  }
  if (config.model.bn_eps) bn.settings.eps = *config.model.bn_eps;
  if (config.model.bn_momentum) bn.settings.momentum = *config.model.bn_momentum;
  if (config.model.bn_eps || config.model.bn_momentum) bn.source = "flag";
  return bn;
}

RunConfig with_batch_norm(const RunConfig& config, const BatchNormConvention& bn) {
  RunConfig c = config;
  c.model.bn_eps = bn.settings.eps;
  c.model.bn_momentum = bn.settings.momentum;
  return c;
}

}  // namespace

ResolvedWeights resolve_weights(const RunConfig& config, const NamedTensors& tensors,
                                const WeightsMetadata& metadata, bool ours, const std::string& path) {
  ResolvedWeights r;
  r.weights = to_native_weights(find_model(config.model.arch), tensors, ours, path);
  r.batch_norm = resolve_batch_norm(config, r.weights.origin, r.weights.foreign, metadata);
  r.config = with_batch_norm(config, r.batch_norm);
  if (const ForeignLayout* f = r.weights.foreign) {
    if (!r.config.model.padding && f->overrides.padding) r.config.model.padding = f->overrides.padding;
    if (!r.config.data.mean && f->mean) r.config.data.mean = f->mean;
    if (!r.config.data.std && f->std) r.config.data.std = f->std;
  }
  return r;
}

RunConfig with_recipe_conventions(const RunConfig& config) {
  return with_batch_norm(config, resolve_batch_norm(config, WeightsOrigin::kNone, nullptr, {}));
}

WeightsMetadata model_metadata(const ModelConfig& model) {
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  return {{"convnets.arch", model.arch},
          {"convnets.num_classes", std::to_string(model.num_classes)},
          {"convnets.bn_eps", text(model.bn_eps.value_or(0))},
          {"convnets.bn_momentum", text(model.bn_momentum.value_or(0))}};
}

RunConfig with_resolved_batch_norm(const RunConfig& config) {
  if (config.init.finetune_from.empty()) return with_recipe_conventions(config);
  WeightsFile file = load_weights_file(config.init.finetune_from);
  const bool ours = !file.metadata.empty();
  return resolve_weights(config, file.tensors, file.metadata, ours, config.init.finetune_from).config;
}

ConvNetPtr build_model(const RunConfig& config, const torch::Device& device) {
  ConvNetPtr model = create_model(config.model.arch, model_overrides(config));
  model->to(device);
  if (config.precision.channels_last) to_channels_last(*model);
  return model;
}

void load_finetune_weights(ConvNetImpl& model, const RunConfig& config, Console& console) {
  const std::string& path = config.init.finetune_from;
  const WeightsFile file = load_weights_file(path);
  const NamedTensors weights =
      to_native_weights(find_model(config.model.arch), file.tensors, !file.metadata.empty(), path).tensors;
  const std::string head = find_model(config.model.arch).classifier + ".";
  auto is_head = [&](const std::string& name) { return name.rfind(head, 0) == 0; };
  std::unordered_map<std::string, torch::Tensor> own;
  for (auto& [name, t] : state_dict(model)) own.emplace(name, t);
  NamedTensors usable;
  std::vector<std::string> skipped;
  for (const auto& [name, t] : weights) {
    const auto it = own.find(name);
    if (it != own.end() && it->second.sizes() != t.sizes() && is_head(name)) {
      skipped.push_back(name);
      continue;
    }
    usable.emplace_back(name, t);
  }
  LoadReport report = load_state_dict(model, usable, /*strict=*/false);
  // The head, and BatchNorm counters older files lack (they do not affect the model), may be missing.
  std::erase_if(report.missing, [&](const std::string& name) {
    return is_head(name) || name.ends_with("num_batches_tracked");
  });
  if (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty()) {
    throw std::runtime_error("finetune_from '" + path + "' does not fit " + config.model.arch +
                             " (only the classifier may differ):\n" + report.describe());
  }
  std::string line = "finetune_from " + path + ": loaded " + std::to_string(report.loaded) + " tensors";
  if (!skipped.empty())
    line += "; kept the fresh init of " + std::to_string(skipped.size()) + " (shape differs)";
  console.info(line);
}

}  // namespace convnets
