// The CPU backend's settings, without its headers: what run/config.h and the configuration keys need
// (docs/architecture.md, "Evaluation and inference").
#pragma once
#include <cstdint>

namespace convnets {

// Which kernels run the inference form on the CPU: the fixed oneDNN plan (cpu/onednn_plan.h), or LibTorch's
// fused oneDNN ops (cpu/fast_inference.h).
enum class CpuInferenceKernels { kPlan, kFused };

// How the plan lays activations out between ops. kAuto is nhwc (cpu/plan_decisions.h says why); the blocked
// layouts are there to measure, and some ops have only oneDNN's slow reference kernel in them.
enum class ActivationLayout { kAuto, kNhwc, kBlocked8, kBlocked16 };

// How the plan merges neighbouring groups of a grouped convolution into wider ones (block-diagonal weights).
enum class GroupMerge {
  kWhereNoDirectKernel,  // where oneDNN has no direct kernel for the groups (ResNeXt's 4-channel ones on
                         // AVX2)
  kAlways,               // by 2 wherever the groups allow (tests: the merge on any instruction set)
};

struct PlanOptions {
  ActivationLayout layout = ActivationLayout::kAuto;
  // Each convolution takes the fastest of oneDNN's implementations for it, timed when its plan is built
  // (slower to build; the logits may differ between runs in their last bits); off: a fixed rule.
  bool autotune = false;
  // 3x3 stride-1 convolutions run as Winograd F(4x4, 3x3) where that pays (cpu/winograd_conv.h).
  bool winograd = true;
  GroupMerge group_merge = GroupMerge::kWhereNoDirectKernel;
};

}  // namespace convnets
