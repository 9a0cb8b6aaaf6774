// `convnets export`: a model's inference form as one ONNX file any standard runtime serves, and optionally a
// Triton model repository around it. The weights are found as eval / predict find them (a checkpoint's EMA
// weights when it has them); the file carries what a client needs to preprocess in metadata_props.
#pragma once
#include <string>

#include "infer/triton_repository.h"
#include "run/config.h"
#include "run/run_context.h"

namespace convnets {

struct ExportOptions {
  std::string output;      // the .onnx file; may be empty when triton_repository is set
  int64_t image_size = 0;  // 0: the architecture's eval size
  bool probabilities = false;
  int64_t topk = 5;
  bool fp16 = false;
  std::string triton_repository;  // a directory; empty: no repository
  TritonOptions triton;           // model_name empty: the architecture's name
};

struct ExportResult {
  std::string onnx_path;        // the file written ("" when only the repository was)
  std::string repository_path;  // <triton_repository>/<model_name>, or ""
  std::string weights;          // which weights: "ema" or "raw" (or "random init" for none)
  std::string source;           // the weights file read
  int64_t bytes = 0;
};

ExportResult run_export(const RunConfig& config, const ExportOptions& options,
                        const RunContext& context = {});

}  // namespace convnets
