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
  std::snprintf(buf, sizeof(buf), "BatchNorm eps %g, momentum %g (%s)", eps, momentum, source.c_str());
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

BatchNormConvention resolve_batch_norm(const ModelConfig& model, WeightsOrigin origin,
                                       const WeightsMetadata& metadata) {
  BatchNormConvention bn;
  const ModelEntry& entry = find_model(model.arch);
  const std::optional<double> meta_eps = metadata_number(metadata, "convnets.bn_eps");
  const std::optional<double> meta_momentum = metadata_number(metadata, "convnets.bn_momentum");
  if (meta_eps && meta_momentum) {
    bn = {*meta_eps, *meta_momentum, "weights metadata"};
  } else if (origin == WeightsOrigin::kTorchvision) {
    bn = {entry.torchvision_bn.eps, entry.torchvision_bn.momentum, "torchvision's"};
  } else if (origin == WeightsOrigin::kTimm) {
    bn = {entry.timm_bn.eps, entry.timm_bn.momentum, "timm's"};
  } else {
    bn = {entry.recipe_bn.eps, entry.recipe_bn.momentum, "recipe"};
  }
  if (model.bn_eps > 0) bn.eps = model.bn_eps;
  if (model.bn_momentum > 0) bn.momentum = model.bn_momentum;
  if (model.bn_eps > 0 || model.bn_momentum > 0) bn.source = "flag";
  return bn;
}

WeightsOrigin weights_origin(const NamedTensors& tensors, const WeightsMetadata& metadata) {
  if (!metadata.empty()) return WeightsOrigin::kConvnets;
  return is_timm_efficientnet_layout(tensors) ? WeightsOrigin::kTimm : WeightsOrigin::kTorchvision;
}

void apply_batch_norm(torch::nn::Module& model, const BatchNormConvention& bn) {
  for (const auto& m : model.modules()) {
    if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) {
      b->options.eps(bn.eps);
      b->options.momentum(bn.momentum);
    }
  }
}

WeightsMetadata model_metadata(const ModelConfig& model) {
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return std::string(buf);
  };
  return {{"convnets.arch", model.arch},
          {"convnets.num_classes", std::to_string(model.num_classes)},
          {"convnets.bn_eps", text(model.bn_eps)},
          {"convnets.bn_momentum", text(model.bn_momentum)}};
}

RunConfig with_resolved_batch_norm(const RunConfig& config) {
  RunConfig c = config;
  WeightsOrigin origin = WeightsOrigin::kNone;
  WeightsMetadata metadata;
  if (!config.init.finetune_from.empty() && (config.model.bn_eps <= 0 || config.model.bn_momentum <= 0)) {
    WeightsFile file = load_weights_file(config.init.finetune_from);
    metadata = std::move(file.metadata);
    origin = weights_origin(file.tensors, metadata);
  }
  const BatchNormConvention bn = resolve_batch_norm(config.model, origin, metadata);
  c.model.bn_eps = bn.eps;
  c.model.bn_momentum = bn.momentum;
  return c;
}

ConvNetPtr build_model(const RunConfig& config, const torch::Device& device) {
  ModelOverrides o;
  o.num_classes = config.model.num_classes;
  if (config.model.bn_eps > 0) o.bn_eps = config.model.bn_eps;
  if (config.model.bn_momentum > 0) o.bn_momentum = config.model.bn_momentum;
  if (config.model.dropout >= 0) o.dropout = config.model.dropout;
  if (config.model.stochastic_depth >= 0) o.stochastic_depth = config.model.stochastic_depth;
  if (find_model(config.model.arch).family == ModelFamily::kResNet) {
    o.zero_init_residual = config.init.zero_init_residual;
    o.init_mode = config.init.weight_init;
  }
  ConvNetPtr model = create_model(config.model.arch, o);
  model->to(device);
  if (config.precision.channels_last) to_channels_last(*model);
  return model;
}

void load_finetune_weights(ConvNetImpl& model, const RunConfig& config, Console& console) {
  const std::string& path = config.init.finetune_from;
  NamedTensors weights = normalize_keys(load_weights(path));
  auto is_head = [](const std::string& name) {
    return name.rfind("fc.", 0) == 0 || name.rfind("classifier.", 0) == 0;
  };
  std::unordered_map<std::string, torch::Tensor> own;
  for (auto& [name, t] : state_dict(model)) own.emplace(name, t);
  NamedTensors usable;
  std::vector<std::string> skipped;
  for (auto& [name, t] : weights) {
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
