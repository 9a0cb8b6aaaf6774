// `convnets export`: a model's inference form as one ONNX file any standard runtime serves, and optionally a
// Triton model repository around it. The weights are found as eval / predict find them (a checkpoint's EMA
// weights when it has them); the file carries what a client needs to preprocess in metadata_props.
#pragma once
#include <string>

#include "infer/triton_repository.h"
#include "run/config.h"
#include "run/run_context.h"

namespace convnets {

struct ExportResult {
  std::string onnx_path;        // the file written ("" when only the repository was)
  std::string repository_path;  // <triton_repository>/<model_name>, or ""
  std::string weights;          // which weights: "ema" or "raw" (or "random init" for none)
  std::string source;           // the weights file read
  int64_t bytes = 0;
};

// What to write comes from the configuration's Export keys (config.exporting).
ExportResult run_export(const RunConfig& config, const RunContext& context = {});

}  // namespace convnets
