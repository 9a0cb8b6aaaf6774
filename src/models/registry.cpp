#include "models/registry.h"

#include <regex>
#include <stdexcept>

#include "util/weights.h"

namespace convnets {

const char* crop_mode_name(CropMode mode) {
  switch (mode) {
    case CropMode::kCenter:
      return "center";
    case CropMode::kCenterCrop:
      return "center_crop";
    case CropMode::kSquash:
      return "squash";
  }
  return "";
}

WeightsLayout weights_layout(const NamedTensors& tensors) {
  auto has = [&](const std::string& key) {
    for (const auto& [name, t] : tensors)
      if (name == key) return true;
    return false;
  };
  if (has("conv1.weight") && has("fc.weight")) return WeightsLayout::kResNet;
  if (has("features.0.0.weight")) return WeightsLayout::kTorchvisionEfficientNet;
  if (has("conv_stem.weight")) {
    // timm V1's first stage is depthwise separable (conv_dw); V2's first stages are fused (conv, conv_exp).
    return has("blocks.0.0.conv_dw.weight") ? WeightsLayout::kTimmEfficientNet
                                            : WeightsLayout::kTimmEfficientNetV2;
  }
  return WeightsLayout::kUnknown;
}

const char* weights_layout_name(WeightsLayout layout) {
  switch (layout) {
    case WeightsLayout::kResNet:
      return "torchvision's / timm's ResNet layout (conv1, layer1.0.conv1, fc)";
    case WeightsLayout::kTorchvisionEfficientNet:
      return "torchvision's EfficientNet layout (features.0.0, features.N.M.block, classifier.1)";
    case WeightsLayout::kTimmEfficientNet:
      return "timm's EfficientNet layout (conv_stem, blocks.S.B.conv_dw, conv_head)";
    case WeightsLayout::kTimmEfficientNetV2:
      return "timm's EfficientNetV2 layout (conv_stem, blocks.S.B.conv / conv_exp / conv_pw, conv_head)";
    case WeightsLayout::kUnknown:
      break;
  }
  return "an unknown layout";
}

namespace {

std::vector<ModelEntry> build_registry() {
  std::vector<ModelEntry> r = resnet_entries();
  for (auto& e : efficientnet_entries()) r.push_back(std::move(e));
  for (auto& e : efficientnet_v2_entries()) r.push_back(std::move(e));
  return r;
}

}  // namespace

const std::vector<ModelEntry>& model_registry() {
  static const std::vector<ModelEntry> registry = build_registry();
  return registry;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : model_registry()) names.push_back(e.name);
  return names;
}

const ModelEntry& find_model(const std::string& name) {
  for (const auto& e : model_registry()) {
    if (e.name == name) return e;
  }
  std::string allowed;
  for (const auto& n : model_names()) allowed += (allowed.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown architecture '" + name + "'; expected one of: " + allowed);
}

const char* model_knob_key(ModelKnob knob) {
  switch (knob) {
    case ModelKnob::kDropout:
      return "dropout";
    case ModelKnob::kStochasticDepth:
      return "stochastic_depth";
    case ModelKnob::kZeroInitResidual:
      return "zero_init_residual";
    case ModelKnob::kWeightInit:
      return "weight_init";
    case ModelKnob::kSeWidth:
      return "se_width";
    case ModelKnob::kPadding:
      return "padding";
  }
  return "?";
}

namespace {

// Whether `o` sets `knob`, and whether to what `fixed` says the model is.
struct KnobUse {
  bool set = false, as_fixed = false;
};
template <typename T>
KnobUse knob_use(const std::optional<T>& asked, const std::optional<T>& fixed) {
  return {asked.has_value(), asked && fixed && *asked == *fixed};
}
KnobUse knob_use(ModelKnob knob, const ModelOverrides& o, const ModelOverrides& fixed) {
  switch (knob) {
    case ModelKnob::kDropout:
      return knob_use(o.dropout, fixed.dropout);
    case ModelKnob::kStochasticDepth:
      return knob_use(o.stochastic_depth, fixed.stochastic_depth);
    case ModelKnob::kZeroInitResidual:
      return knob_use(o.zero_init_residual, fixed.zero_init_residual);
    case ModelKnob::kWeightInit:
      return knob_use(o.init_mode, fixed.init_mode);
    case ModelKnob::kSeWidth:
      return knob_use(o.se_width, fixed.se_width);
    case ModelKnob::kPadding:
      return knob_use(o.padding, fixed.padding);
  }
  return {};
}

}  // namespace

void check_model_overrides(const ModelEntry& entry, const ModelOverrides& o) {
  if (o.num_classes && *o.num_classes < 1)
    throw std::invalid_argument("num_classes must be >= 1, got " + std::to_string(*o.num_classes));
  if (o.se_width && *o.se_width < 1) throw std::invalid_argument("se_width must be >= 1");
  for (const ModelKnob knob : {ModelKnob::kDropout, ModelKnob::kStochasticDepth, ModelKnob::kZeroInitResidual,
                               ModelKnob::kWeightInit, ModelKnob::kSeWidth, ModelKnob::kPadding}) {
    const KnobUse use = knob_use(knob, o, entry.fixed);
    if (!use.set || use.as_fixed || entry.knobs.count(knob)) continue;
    std::string takers;
    for (const ModelEntry& e : model_registry())
      if (e.knobs.count(knob)) takers += (takers.empty() ? "" : ", ") + e.name;
    throw std::invalid_argument(std::string(model_knob_key(knob)) + ": " + entry.name + " does not take it" +
                                (takers.empty() ? std::string() : " (the models that do: " + takers + ")"));
  }
}

ConvNetPtr create_model(const std::string& name, const ModelOverrides& overrides) {
  const ModelEntry& entry = find_model(name);
  check_model_overrides(entry, overrides);
  return entry.create(overrides);
}

NativeWeights to_native_weights(const ModelEntry& entry, const NamedTensors& tensors, bool ours,
                                const std::string& context) {
  NativeWeights w;
  w.tensors = tensors;
  bool all_prefixed = !w.tensors.empty();
  for (const auto& [name, t] : w.tensors) all_prefixed = all_prefixed && name.rfind("module.", 0) == 0;
  if (all_prefixed) {
    for (auto& [name, t] : w.tensors) name = name.substr(7);
  }
  w.layout = weights_layout(w.tensors);
  w.origin = ours ? WeightsOrigin::kConvnets : entry.native_origin;
  if (w.layout == entry.native_layout || w.layout == WeightsLayout::kUnknown)
    return w;  // the loader names keys
  for (const ForeignLayout& f : entry.foreign_layouts) {
    if (f.layout != w.layout) continue;
    w.tensors = f.to_native(w.tensors);
    w.origin = ours ? WeightsOrigin::kConvnets : f.origin;
    w.foreign = &f;
    return w;
  }
  std::string takes = weights_layout_name(entry.native_layout);
  for (const ForeignLayout& f : entry.foreign_layouts)
    takes += std::string(" or ") + weights_layout_name(f.layout);
  throw std::runtime_error(context + ": the weights have " + weights_layout_name(w.layout) + ", but " +
                           entry.name + " reads " + takes);
}

LoadReport load_model_weights(ConvNetImpl& model, const std::string& arch, const std::string& path,
                              bool strict) {
  const WeightsFile file = load_weights_file(path);
  const NativeWeights w = to_native_weights(find_model(arch), file.tensors, !file.metadata.empty(), path);
  try {
    return load_state_dict(model, w.tensors, strict);
  } catch (const StateDictMismatch& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace convnets
