// `predict`: the top-k classes of one image or of every JPEG / PNG under a directory, decoded whole and
// transformed as evaluation does (PIL's and torchvision's pixels), with the EMA weights when the checkpoint
// has them.
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/image_folder_dataset.h"
#include "data/transforms.h"
#include "infer/imagenet_classes.h"
#include "infer/modes.h"
#include "infer/weights_for_inference.h"
#include "run/data_setup.h"
#include "run/inference_model.h"
#include "run/parallel_setup.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> images_to_predict(const std::string& target) {
  std::vector<std::string> files;
  if (fs::is_directory(target)) {
    for (const auto& e : fs::recursive_directory_iterator(target)) {
      if (e.is_regular_file() && is_image_file(e.path().string())) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::invalid_argument("to_predict '" + target + "' holds no JPEG or PNG image");
  } else if (fs::is_regular_file(target)) {
    files.push_back(target);
  } else {
    throw std::invalid_argument("to_predict '" + target + "' does not exist");
  }
  return files;
}

std::string class_name(const PredictResult& r, int64_t c) {
  return c < static_cast<int64_t>(r.class_names.size()) ? r.class_names[static_cast<size_t>(c)] : "";
}

nlohmann::json predictions_json(const PredictResult& r) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : r.predictions) {
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < p.classes.size(); ++i)
      top.push_back({{"class", p.classes[i]},
                     {"probability", p.probabilities[i]},
                     {"name", class_name(r, p.classes[i])}});
    j.push_back({{"file", p.file}, {"top", top}});
  }
  return j;
}

// A CSV field: quoted when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string format_predictions(const PredictResult& r, PredictFormat format) {
  std::string out;
  char line[512];
  switch (format) {
    case PredictFormat::kJson:
      return predictions_json(r).dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
    case PredictFormat::kCsv:
      out = "file,rank,class,probability,name";
      for (const auto& p : r.predictions) {
        for (size_t i = 0; i < p.classes.size(); ++i) {
          std::snprintf(line, sizeof(line), ",%zu,%lld,%.17g,", i + 1, static_cast<long long>(p.classes[i]),
                        p.probabilities[i]);
          out += '\n';
          out += csv_field(p.file);
          out += line;
          out += csv_field(class_name(r, p.classes[i]));
        }
      }
      return out;
    case PredictFormat::kText:
      break;
  }
  for (const auto& p : r.predictions) {
    out += (out.empty() ? "" : "\n") + p.file;
    for (size_t i = 0; i < p.classes.size(); ++i) {
      std::snprintf(line, sizeof(line), "\n  %2zu. %5lld  %6.2f%%  ", i + 1,
                    static_cast<long long>(p.classes[i]), 100.0 * p.probabilities[i]);
      out += line + class_name(r, p.classes[i]);
    }
  }
  return out;
}

PredictResult run_predict(const RunConfig& config, const RunContext& context) {
  require_single_process(config, "predict");
  Console& console = *context.console;
  if (config.predict.to_predict.empty())
    throw std::invalid_argument("predict needs --to_predict FILE_OR_DIRECTORY");
  PredictResult result;
  const std::vector<std::string> files = images_to_predict(config.predict.to_predict);
  result.files = files.size();
  // Machine-readable output keeps stdout for the predictions alone.
  auto say = [&](const std::string& s) {
    config.predict.output == PredictFormat::kText ? console.info(s) : console.diagnostic(s);
  };
  const RunDevice device = setup_device(config.precision, config.cpu);
  const LoadedWeights w = load_for_inference(config, device, /*allow_random=*/false, console);
  const ResolvedData data = resolve_data(w.config);
  // The average, when there is one; in its inference form unless asked otherwise.
  std::optional<Int8Quantization> int8;
  if (config.int8.int8) int8 = load_int8_quantization(config.output.model_dir);
  InferenceModel form(w.ema_model ? w.ema_model : w.model, config.model.arch, device, config.precision,
                      config.cpu, &console, int8 ? &*int8 : nullptr);
  result.class_names = class_names_or_imagenet(config);
  const EvalTransformOptions transform = eval_transform_options(w.config);
  const int64_t batch =
      config.eval_input.eval_batch_size.value_or(std::min<int64_t>(config.iterations.batch_size, 32));
  const int64_t k = std::min(config.predict.topk, config.model.num_classes);
  say("predicting " + std::to_string(files.size()) + " image(s) with " + w.source +
      (w.ema_model ? " (EMA weights)" : "") + "; " + w.batch_norm.describe() + "; " + form.describe());
  double decode_s = 0, model_s = 0;
  torch::NoGradGuard no_grad;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(batch));
    const auto t0 = std::chrono::steady_clock::now();
    // One unreadable image is reported and skipped; the others are still predicted. A single file given
    // alone is an error at once.
    std::vector<size_t> readable;
    torch::Tensor u8 =
        torch::empty({static_cast<int64_t>(end - start), transform.size, transform.size, 3}, torch::kUInt8);
    for (size_t i = start; i < end; ++i) {
      try {
        const ImageU8 img = eval_transform(decode_image(read_file(files[i])), transform);
        std::memcpy(u8[static_cast<int64_t>(readable.size())].data_ptr<uint8_t>(), img.pixels.data(),
                    img.pixels.size());
        readable.push_back(i);
      } catch (const std::exception& e) {
        const std::string what = "to_predict: '" + files[i] + "' is not a readable image: " + e.what();
        if (files.size() == 1) throw std::runtime_error(what);
        console.error(what);
        result.unreadable.push_back(files[i]);
      }
    }
    if (readable.empty()) continue;
    u8 = u8.narrow(0, 0, static_cast<int64_t>(readable.size()));
    const auto t1 = std::chrono::steady_clock::now();
    const torch::Tensor probs =
        torch::softmax(form.forward_images(u8.to(device.device), data.mean, data.std), 1);
    auto [values, indices] = probs.topk(k, 1);
    values = values.cpu();
    indices = indices.cpu();
    device.synchronize();
    const auto t2 = std::chrono::steady_clock::now();
    decode_s += std::chrono::duration<double>(t1 - t0).count();
    model_s += std::chrono::duration<double>(t2 - t1).count();
    for (size_t row = 0; row < readable.size(); ++row) {
      Prediction p;
      p.file = files[readable[row]];
      for (int64_t j = 0; j < k; ++j) {
        p.classes.push_back(indices[static_cast<int64_t>(row)][j].item<int64_t>());
        p.probabilities.push_back(values[static_cast<int64_t>(row)][j].item<double>());
      }
      result.predictions.push_back(std::move(p));
    }
  }
  char timing[256];
  std::snprintf(timing, sizeof(timing),
                "%zu image(s): decode+transform %.1f ms/image, model %.1f ms/image (%s)", files.size(),
                1e3 * decode_s / static_cast<double>(files.size()),
                1e3 * model_s / static_cast<double>(files.size()), device.describe().c_str());
  result.summary = timing;
  if (!config.predict.predict_output.empty()) {
    write_file_atomic(
        config.predict.predict_output,
        predictions_json(result).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  return result;
}

}  // namespace convnets
